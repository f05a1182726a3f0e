"""Suite-wide set-up that must happen before any test module is imported.

``concurrent.futures.thread`` is imported first on purpose. The SDK's ``TracerProvider`` registers an
``os.register_at_fork`` child handler that rebuilds its resource through a ``ThreadPoolExecutor``;
``concurrent.futures.thread`` re-initialises its global shutdown lock in a fork child with a handler
of its own, registered when it is first imported. Child handlers run in registration order, so a
provider made before that module was imported (a test module's bare ``TracerProvider(resource=...)``
does not import it) runs its handler while the lock is still held from the parent's side of the
fork, and every later fork of the test process (the readers' pools) hangs in its child. modeltel's
own configure() always imports the module before it makes a provider (``Resource.create`` uses the
executor), so only code that makes a bare provider first meets this.
"""

import concurrent.futures.thread  # noqa: F401  (the import is the point)
