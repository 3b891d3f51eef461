"""Uploaded image sets, torch-free (numpy, Pillow): the API ingests uploads itself, and workers read the
packed arrays. Nothing is imported here; each module has one job:

    archives   reading a zip or tar safely, member by member, within IngestLimits
    images     decoding one image into (C, S, S) uint8 pixels
    labels     labels from folders, a labels.csv or UTKFace file names
    ages       age groups (age_bins): names, buckets, checks
    ingest     an archive into a packed set: read, decode, label, pack
    packed     the packed set on disk: images.npy and labels.npy, written row by row, read memory-mapped
    builtin    the built-in `digits` set
    store      data sets as the service keeps them under datasets/{id}/
    errors     DatasetError, the one error an upload fails with as a whole
"""
