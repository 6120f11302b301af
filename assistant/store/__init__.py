"""The persisted index: generations of Chroma collections, the index folder, the write lock,
and incremental indexing.

  pointer.py   which generation is live: a CURRENT file, or a record on a Chroma server
  chroma.py    the Chroma collections of one generation
  snapshot.py  a generation loaded for reading, with its in-memory vector tables
  sync.py      the writer: incremental update, rebuild, garbage collection
  index.py     IndexStore, which the rest of the assistant uses
"""

from assistant.store.chroma import (
    DOCUMENTS,
    PASSAGES,
    SENTENCES,
    ChromaIndex,
    per_passage,
    sentence_ids,
    split_sentence_id,
)
from assistant.store.index import IndexStore
from assistant.store.pointer import (
    FORMAT_VERSION,
    REBUILD_HINT,
    FilePointer,
    GenerationPointer,
    ServerPointer,
    generation_pointer,
    local_root,
)
from assistant.store.snapshot import IndexSnapshot, SnapshotCache, VectorTable
from assistant.store.sync import IndexWriter, ProgressFactory, library_versions, no_progress

__all__ = [
    "DOCUMENTS",
    "FORMAT_VERSION",
    "PASSAGES",
    "REBUILD_HINT",
    "SENTENCES",
    "ChromaIndex",
    "FilePointer",
    "GenerationPointer",
    "IndexSnapshot",
    "IndexStore",
    "IndexWriter",
    "ProgressFactory",
    "ServerPointer",
    "SnapshotCache",
    "VectorTable",
    "generation_pointer",
    "library_versions",
    "local_root",
    "no_progress",
    "per_passage",
    "sentence_ids",
    "split_sentence_id",
]
