"""Recognition core: find faces, crop them the report's way, and name them."""
