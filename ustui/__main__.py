from ustui.cli import run

run()
