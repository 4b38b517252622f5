"""The web server's sessions: unguessable ids, each bound to the token that made it, at most a few at once."""

import hmac
import secrets
import threading


class Full(Exception):
    """As many sessions as the server keeps are open."""


class Sessions:
    """Live sessions of one sandbox. Ended ones (idle too long, timed out, closed) are dropped as they are found."""

    def __init__(self, sandbox, limit, idle):
        self.sandbox, self.limit, self.idle = sandbox, limit, idle
        self._live = {}  # id -> (session, token)
        self._lock = threading.Lock()

    def create(self, token):
        """A new session's id; Full when the server already keeps `limit`."""
        with self._lock:
            self._prune()
            if len(self._live) >= self.limit:
                raise Full()
            key = secrets.token_urlsafe(24)
            self._live[key] = (None, token)  # its place is taken while its container starts
        try:
            made = self.sandbox.session(idle=self.idle)
        except BaseException:
            with self._lock:
                del self._live[key]
            raise
        with self._lock:
            self._live[key] = (made, token)
        return key

    def get(self, key, token):
        """The live session with this id, made with this token; None if there is none."""
        with self._lock:
            self._prune()
            made, owner = self._live.get(key, (None, None))
        if made is None or not hmac.compare_digest((owner or "").encode(), (token or "").encode()):
            return None
        return made

    def delete(self, key, token):
        """End a session; False if there was none with this id and token."""
        made = self.get(key, token)
        if made is None:
            return False
        with self._lock:
            self._live.pop(key, None)
        made.close()
        return True

    def close_all(self):
        with self._lock:
            live, self._live = [made for made, _ in self._live.values() if made is not None], {}
        for made in live:
            made.close()

    def _prune(self):
        for key, (made, _) in list(self._live.items()):
            if made is not None and not made.alive:
                made.close()
                del self._live[key]
