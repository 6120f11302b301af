"""The corpus folder: documents on disk and the manifest that describes them.

Flow: files + `sources.toml` (manifest) -> `CorpusDocument` (scanning: metadata + text from the
loaders + content hash), which chunking turns into passages. `add_files` (add) copies new
documents in and records them.
"""

from assistant.corpus.add import ADD_DIR, AddResult, add_files
from assistant.corpus.loaders import LOADERS, CorpusFileError, extract
from assistant.corpus.manifest import (
    MANIFEST_NAME,
    SAFE_URL_SCHEMES,
    Manifest,
    is_safe_url,
    read_manifest,
    write_manifest,
)
from assistant.corpus.scanning import (
    LOADER_VERSION,
    CorpusDocument,
    CorpusScan,
    CorpusWarning,
    content_hash,
    file_digest,
    file_fingerprints,
    files_unchanged,
    list_files,
    recorded_files,
    require_corpus,
    scan,
    slugify,
)

__all__ = [
    "ADD_DIR",
    "LOADERS",
    "LOADER_VERSION",
    "MANIFEST_NAME",
    "SAFE_URL_SCHEMES",
    "AddResult",
    "CorpusDocument",
    "CorpusFileError",
    "CorpusScan",
    "CorpusWarning",
    "Manifest",
    "add_files",
    "content_hash",
    "extract",
    "file_digest",
    "file_fingerprints",
    "files_unchanged",
    "is_safe_url",
    "list_files",
    "read_manifest",
    "recorded_files",
    "require_corpus",
    "scan",
    "slugify",
    "write_manifest",
]
