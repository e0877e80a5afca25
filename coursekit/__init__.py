"""coursekit: the finished, tested code behind the course notebooks.

Each module is one topic; the notebooks build these pieces from scratch in
front of the student, then import the finished copy from here.
"""

__version__ = "0.1.0"
