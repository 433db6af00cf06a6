"""The stages a document goes through: inspection, text (ocr), parse, match, and the
record of what was read and decided."""
