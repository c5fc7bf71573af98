"""The family information directory: an Open Referral UK store with hybrid (words + meaning) search.

    from directory import Directory
    d = Directory.open()
    d.search("my toddler isn't talking yet", area="gloucestershire", age=2)
"""
from directory.core import Directory

__all__ = ["Directory"]
