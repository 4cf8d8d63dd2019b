"""
The shipping machinery behind :class:`~structflow.handlers.HTTPHandler` and
:class:`~structflow.handlers.SyslogHandler`.

A shipping handler (:mod:`.handler`, a ``logging.Handler``) sits in front of
a :class:`~.worker.Worker`, which moves records through three stages (what
they share, under one lock, is :mod:`.state`'s):

1. **intake** — the caller's thread takes a :mod:`.snapshot` of the record
   (message computed once, arguments dropped, traceback formatted, field
   values frozen: containers copied all the way down) and appends it to an
   in-memory queue bounded in bytes. No rendering, no I/O.
2. **writer thread** (:mod:`.writer`) — renders each record into an
   *entry* (bytes) with the handler's :class:`~.sink.Sink`, and pushes the
   entries into its :class:`~.buffer.Buffer`: in memory
   (:class:`~.buffer.MemoryBuffer`), or on disk (:class:`~.spool.Spool`,
   with ``spool_dir``: records survive a crash once spooled;
   :mod:`.segments` is its file format, :mod:`.reading` reads them back and
   counts what damage lost, :mod:`.fallback` keeps in memory what a full
   disk refuses, :mod:`.adoption` holds its lock files and takes over what
   ended processes left).
3. **sender thread** (:mod:`.sender`) — takes batches (by records, bytes
   and time, or at once when the queue is half full) from the buffer and
   delivers them through the sink (:mod:`.delivery`), one batch in flight
   at a time (so order is kept), retrying with exponential backoff and
   jitter.

``flush()`` is a barrier: it drops a *marker* into the intake; the writer
turns it into a position in the buffer, and the marker is released when the
sender has resolved every entry before that position.

The worker's own code never takes ``logging``'s module lock: its
:mod:`.diagnostics` are built and handed to the ``structflow.shipping``
logger's handlers directly (or written to stderr when none would show
them). (urllib3's logging calls on the sender thread may take it, but the
sender holds nothing a log call or ``dictConfig`` waits for, and a handler
closed inside ``dictConfig`` does not wait for the worker.) No
shipping handler ever ships a record made on a worker thread, which is also
what stops urllib3's debug logs from recursing. Fork, interpreter exit and
multiprocessing children are :mod:`.lifecycle`'s part; the options every
handler shares, :mod:`.settings`'.

Data flows one way: snapshot → sink (render) → buffer → sink (send). Modules
import only those below them: the spool's parts (segments, fallback,
reading, adoption) below the spool, the spool below the worker's state,
the state below the writer and sender stages, and those below the worker,
which is below the handler.
"""
