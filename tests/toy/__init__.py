"""A router added the way the registry says: one router file, one trainer file, one entry."""
