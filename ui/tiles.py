"""An offline base map: tiles from an MBTiles file, served by our own server.

MBTiles (https://github.com/mapbox/mbtiles-spec) is SQLite with a ``tiles`` table keyed by zoom,
column and row, rows counted from the south (TMS), so ``y`` is flipped on the way in. The file is
opened read-only; a missing tile is a 404 and the map shows the plain background there.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from safetynet.errors import ConfigError

_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


class TileFile:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"tiles file {path} does not exist")
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
        except sqlite3.DatabaseError as err:
            raise ConfigError(f"tiles file {path} is not an MBTiles file: {err}") from err
        self.extension = str(meta.get("format", "png")).lower()
        if self.extension not in _MIME:
            raise ConfigError(f"tiles file {path}: tile format {self.extension!r} is not served")
        self.attribution = str(meta.get("attribution", ""))
        self._lock = threading.Lock()

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, (2**z - 1) - y),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def router(self) -> APIRouter:
        router = APIRouter()
        mime = _MIME[self.extension]

        @router.get("/tiles/{z}/{x}/{y}.{ext}", include_in_schema=False)
        def tile(z: int, x: int, y: int, ext: str) -> Response:
            data = self.tile(z, x, y) if ext == self.extension else None
            if data is None:
                return Response(status_code=404)
            return Response(
                data, media_type=mime, headers={"Cache-Control": "public, max-age=86400"}
            )

        return router

    def close(self) -> None:
        self._db.close()
