"""Annotate a whole library of videos: several at once on one machine, or across a Ray cluster.

    from animerec.library.job import LibraryOptions, run_library
    run_library(LibraryOptions(Path("episodes"), Path("annotated"), Config(), jobs=2))

OUTDIR/library.sqlite (index.py) is both the job's manifest, which makes a stopped job
resumable, and the table of which character appears where (`animerec library query`).
"""
