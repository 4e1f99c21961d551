"""What each request does: reads, writes, patches, deletion, watches, selectors, Table output
and version conversion, over the store's objects.
"""
