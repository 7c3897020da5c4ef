"""File importers: Cboe DataShop EOD, Cboe delayed quotes, QuantConnect LEAN minute zips, Databento DBN.

    reports = import_files(store, ["spxw20190626.csv"], "cboe-datashop")

Each file is streamed (bounded memory), imported in one store transaction (all or nothing) and
skipped as ``duplicate`` when its SHA-256 was imported before. Nothing is lost silently: every
physical line of a text file is one record (see :mod:`.parsing`), stored or rejected with its own
line number and a specific reason, malformed or implausible (:mod:`.plausible`); a bad zip member is
rejected by name. A file that cannot be read or parsed at all imports nothing (status ``failed``,
``error`` says why and how to fix it); folders, devices and FIFOs are refused unopened.
Format specifics and the choices made for each are in the format modules' docstrings.
"""

from spx_core.marketdata.importers.base import (FORMATS, MAX_REJECTIONS, ImportFileError, ImportReport,
                                                ImportStatus, ProgressCallback, Rejection, import_files,
                                                sha256_file)

__all__ = ["FORMATS", "MAX_REJECTIONS", "ImportFileError", "ImportReport", "ImportStatus", "ProgressCallback",
           "Rejection", "import_files", "sha256_file"]
