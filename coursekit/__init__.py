"""coursekit: the finished, tested code behind the course notebooks.

Each module is one topic; the notebooks build these pieces from scratch in
front of the student, then import the finished copy from here.

Importing coursekit installs ``coursekit.quiet``'s few warnings and logging
filters (each for one library message checked to be harmless; nothing is
imported for it). ``COURSEKIT_VERBOSE=1`` keeps every message.
"""

from coursekit import quiet as _quiet

__version__ = "0.1.0"

_quiet.install()
