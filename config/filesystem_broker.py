"""kombu's filesystem transport, with every file written whole before anyone can read it.

The embedded broker of `make run` (no REDIS_URL): messages are files in var/broker/queue/.
kombu 5 creates a message file under its final name and then writes into it, and the worker
takes any file with that name: now and then it took one before the web process had written
it, read zero bytes, and died on a JSONDecodeError (issue 16: `make run` fell over by itself
about once in five starts). The exchange table of a fanout exchange (the worker's control
queue) had the same gap between creating the file and writing it.

Here a writer writes under a name the readers skip (`.<random>.tmp`, which has no
`.<queue>.msg` ending), then renames it into place: a rename within one folder is atomic on
POSIX, so a reader sees the whole file or nothing. A new exchange table is linked into place
(os.link fails when another process made it first, and that one is then updated under its
lock as kombu does).

Why not another embedded broker: Redis would need a server (`make run` needs nothing but
Python), and kombu's SQLAlchemy transport would add a dependency and a second database for a
development default. The filesystem transport is right but for this one race.
Selected in config/settings.py with CELERY_BROKER_TRANSPORT, and so by every process that
loads the Celery app (web, worker, beat, management commands).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


def file_write_whole(path: str, data: bytes) -> str:
    """Write `data` under a temporary name next to `path`; return that name. Readers of the
    folder never take it: kombu reads only names that end in `.<queue>.msg`."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
    return temporary


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: written whole under a temporary name, then renamed."""
        filename = os.path.join(self.data_folder_out, f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        try:
            temporary = file_write_whole(filename, str_to_bytes(dumps(payload)))
            os.replace(temporary, filename)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {filename!r} to directory") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        """Bind as kombu does, but a new exchange table appears whole (linked into place)."""
        file = self._exchange_file(exchange)
        if not file.exists():
            self.control_folder.mkdir(exist_ok=True)
            table = [filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")]
            temporary = file_write_whole(str(file), str_to_bytes(dumps(table)))
            try:
                os.link(temporary, file)
                return
            except FileExistsError:
                pass  # another process made it meanwhile: add to theirs, under its lock
            except OSError as exc:
                raise ChannelError(f"Cannot open {file}") from exc
            finally:
                os.unlink(temporary)
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel
