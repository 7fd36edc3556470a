"""Turn an uploaded file into extracted text and structural blocks with exact offsets."""

from citeline.knowledge.parsing.detect import SUPPORTED_SUFFIXES, media_type_for, parse
from citeline.knowledge.parsing.types import Block, BlockKind, InvalidDocument, ParsedDocument

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Block",
    "BlockKind",
    "InvalidDocument",
    "ParsedDocument",
    "media_type_for",
    "parse",
]
