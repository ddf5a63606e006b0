"""ustui: prepare ultrasound DICOM exams for AI research from a terminal."""

__version__ = "0.1.0"
