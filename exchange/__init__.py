"""exchange: file-based batch exchange between Comarch ERP Enterprise and Comarch Mobile.

CEE exports become Mobile packages, packages returned by Mobile become CEE
import documents; every input yields its output exactly once.
"""

__version__ = "0.1.0"
