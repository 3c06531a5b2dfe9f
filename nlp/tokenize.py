"""jieba tokenising with a campaign user dictionary, stopwords and a process pool.

Why a private ``jieba.Tokenizer`` instead of the module-level one: several
campaigns (and tests) may run side by side in one process, each with its own
user dictionary; the global tokenizer would leak words between them.

Why a process pool rather than ``jieba.enable_parallel``: jieba's own
parallel mode is POSIX-only, global, and re-splits text by lines. A pool of
workers that inherit (fork) or rebuild (spawn) the same tokenizer keeps the
output identical to the serial path, which is what the token cache relies on.

Why rjieba (jieba-rs) does the cutting: it is jieba's algorithm and jieba's
dictionary compiled, about 15x faster than jieba's pure-Python loops, which
were most of the cost of an analysis. Its words equal jieba's (checked in
tests/test_nlp.py); where they can differ (HMM on runs of digits and
punctuation, e.g. ``4-5``) cleaning and the token filter drop those pieces.
jieba itself still serves POS-tagged TextRank (``_engine``), with the same
user dictionary. Without rjieba installed, jieba cuts (same words, slower).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import multiprocessing as mp
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from importlib import resources
from typing import NamedTuple

from nlp.clean import clean_post

log = logging.getLogger(__name__)

# Bump when tokenising changes in a way that makes cached tokens stale.
TOKENIZER_VERSION = "2"

_HAN_RE = re.compile(r"[\u4e00-\u9fff]")
# jieba's finalseg split of non-Chinese runs (re_skip): letters/digits, optional decimal, percent.
_ASCII_RUN_RE = re.compile(r"[a-zA-Z0-9]+(?:\.\d+)?%?")

PARALLEL_MIN = 4000     # below this many texts a pool costs more than it saves


@lru_cache(maxsize=1)
def default_stopwords() -> frozenset[str]:
    """The shipped stopword list (nlp/data/stopwords.txt)."""
    text = resources.files("nlp").joinpath("data/stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def dictionary_fingerprint(words: Iterable[str]) -> str:
    """Identifies a user dictionary (plus tokenizer version) for cache invalidation."""
    h = hashlib.blake2b(digest_size=10)
    h.update(TOKENIZER_VERSION.encode())
    for w in sorted(set(words)):
        h.update(w.encode("utf-8") + b"\x00")
    return h.hexdigest()


def usable_dict_word(word: str) -> str | None:
    """A user-dictionary entry as jieba should see it (lower-case, no spaces), or None."""
    w = (word or "").strip().lower()
    if not w or any(c.isspace() for c in w) or len(w) > 40:
        return None
    return w


@lru_cache(maxsize=4)
def _jieba_with(user_words: tuple[str, ...]):
    """A loaded jieba tokenizer with these extra words (memoised: loading the
    main dictionary takes about a second, and the words fully determine it)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    tk.initialize()
    for w in user_words:
        # A high frequency makes jieba keep the word whole even inside longer runs.
        tk.add_word(w, freq=max(tk.suggest_freq(w, tune=False), 20000), tag="n")
    return tk


@lru_cache(maxsize=1)
def _rjieba_installed() -> bool:
    """Whether rjieba is installed, known without importing it (its import
    loads a dictionary: 0.14 s the analysis would wait for before forking)."""
    return importlib.util.find_spec("rjieba") is not None


@lru_cache(maxsize=1)
def _rjieba_module():
    """rjieba, or None when it is not installed (jieba cuts then). Installed
    but failing to load is an error: the token cache says which engine cut."""
    if not _rjieba_installed():
        log.info("rjieba not installed: cutting with jieba (same words, slower)")
        return None
    try:
        import rjieba
    except ImportError as exc:
        raise ImportError(f"rjieba is installed but does not load ({exc}); reinstall it"
                          " (pip install --force-reinstall rjieba) or uninstall it to cut with jieba") from exc
    return rjieba


def _new_cutter(rjieba):
    """A fresh rjieba instance; the first one asked for is the instance
    rjieba built on import.

    Why: importing rjieba loads its dictionary into a module-level instance
    (0.1 s), and a new instance loads it again (another 0.1 s, which the
    analysis would wait for before forking). Nothing here uses rjieba's
    module-level functions, so the first cutter takes that instance (popped
    from the module's namespace: atomic, so two threads never share it) and
    adds its words to it; later cutters load their own.
    """
    taken = vars(rjieba).pop("_DEFAULT_JIEBA", None)
    return taken if taken is not None else rjieba.Jieba()


@lru_cache(maxsize=4)
def _cutter_with(user_words: tuple[str, ...]):
    """The fast word cutter (rjieba, a Rust port of jieba with its dictionary)
    with these extra words, or None when rjieba is not installed."""
    rjieba = _rjieba_module()
    if rjieba is None:
        return None
    rj = _new_cutter(rjieba)
    for w in user_words:
        rj.add_word(w, max(rj.suggest_freq(w), 20000), "n")
    return rj


def engine_name() -> str:
    """Which library cuts words: part of the token-cache version."""
    return "rjieba" if _rjieba_installed() else "jieba"


class Tokenizer:
    """``tokenize(text) -> list[str]``: jieba words minus stopwords, punctuation and bare numbers.

    Expects text already cleaned by ``nlp.clean.clean_post`` (lower-cased,
    normalised). Callable, so it plugs into scikit-learn vectorizers as
    ``analyzer=``. Picklable: a worker process rebuilds the jieba instance.
    """

    def __init__(self, user_words: Iterable[str] = (), stopwords: Iterable[str] | None = None, hmm: bool = True):
        self.user_words = sorted({w for w in (usable_dict_word(x) for x in user_words) if w})
        self.stopwords = frozenset(stopwords) if stopwords is not None else default_stopwords()
        self.hmm = hmm
        self._jieba = None
        self._cut = None

    @property
    def fingerprint(self) -> str:
        return dictionary_fingerprint(self.user_words + [f"hmm={self.hmm}", f"engine={engine_name()}"])

    def _engine(self):
        if self._jieba is None:
            self._jieba = _jieba_with(tuple(self.user_words))
        return self._jieba

    def _cut_fn(self):
        """``cut(text) -> list[str]``: rjieba's when installed, else jieba's."""
        if self._cut is None:
            rj = _cutter_with(tuple(self.user_words))
            if rj is not None:
                hmm = self.hmm
                self._cut = lambda text: rj.cut(text, hmm)
            else:
                engine, hmm = self._engine(), self.hmm
                self._cut = lambda text: engine.cut(text, HMM=hmm)
        return self._cut

    def warm(self) -> "Tokenizer":
        """Load the dictionary now (before forking workers, so they share it)."""
        self._cut_fn()
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_jieba"] = None
        state["_cut"] = None
        return state

    def tokenize(self, text: str) -> list[str]:
        if not text:
            return []
        stop = self.stopwords
        out = []
        for w in self._cut_fn()(text):
            if w in stop:
                continue
            if "\u4e00" <= w[0] <= "\u9fff":
                out.append(w)
            elif w.isascii():
                # English words and letter-digit mixes (iphone6s, 5g); bare numbers and punctuation go.
                if w.isalnum():
                    if len(w) > 1 and not w.isdigit():
                        out.append(w)
                elif len(w) > 2:
                    # rjieba keeps runs like "m600-02s" whole where jieba's HMM
                    # splits them into letter-digit runs; split them the same way.
                    out.extend(p for p in _ASCII_RUN_RE.findall(w) if len(p) > 1 and p.isalnum() and not p.isdigit())
            elif _HAN_RE.search(w):
                out.append(w)
        return out

    __call__ = tokenize

    def process_post(self, text: str) -> ProcessedPost:
        """Clean one raw post and cut it: what the token cache stores."""
        c = clean_post(text)
        return ProcessedPost(" ".join(self.tokenize(c.text)), c.text, "\t".join(c.topics),
                             "\t".join(c.mentions), "\t".join(c.emoticons))

    def tokenize_many(self, texts: Sequence[str], workers: int | None = None,
                      progress: Callable[[int], None] | None = None) -> list[list[str]]:
        """Tokenise many (cleaned) texts, in parallel on all cores when there are
        enough of them. Output equals the serial ``[tokenize(t) for t in texts]``."""
        with self.pool(workers, len(texts)) as run:
            return run(tokenize_chunk, texts, progress)

    def process_many(self, texts: Sequence[str], workers: int | None = None,
                     progress: Callable[[int], None] | None = None) -> list[ProcessedPost]:
        """``process_post`` over many raw posts, in parallel when worth it."""
        with self.pool(workers, len(texts)) as run:
            return run(process_chunk, texts, progress)

    @contextmanager
    def pool(self, workers: int | None = None, n_texts: int | None = None):
        """Yields a :class:`Runner`: ``run(chunk_fn, texts, progress) -> list``,
        ``submit(chunk_fn, texts) -> handle`` (``handle.get() -> list``) so
        the caller can store one batch while the workers cut the next, and
        ``stream`` for other steps in the workers. One process pool serves
        all calls. Serial with few texts (``n_texts``; the caller may
        ``start()`` the workers later) or one core (the dictionary is loaded
        once there is work).

        The dictionary is not loaded here before forking: a process that has
        it already passes it on, and otherwise each worker loads its own at
        once, side by side, while the caller goes on (the analysis forks
        first and looks for the posts to cut meanwhile)."""
        runner = Runner(self, workers if workers is not None else (os.cpu_count() or 1))
        try:
            if n_texts is None:
                runner.start()
            else:
                runner.start_for(n_texts)
            yield runner
        finally:
            runner.close()


class _Done:
    def __init__(self, value: list) -> None:
        self.value = value

    def get(self) -> list:
        return self.value


class _Pending:
    def __init__(self, result) -> None:
        self.result = result

    def get(self) -> list:
        return [x for part in self.result.get() for x in part]


class Runner:
    """Chunks of work for the worker processes once started, for this process until then."""

    def __init__(self, tokenizer: Tokenizer, workers: int) -> None:
        self.tokenizer, self.workers, self.procs = tokenizer, max(1, workers), None

    @property
    def parallel(self) -> bool:
        """True when chunks go to worker processes (their steps must not use this process's resources)."""
        return self.procs is not None

    def start(self) -> None:
        """Fork the worker processes (nothing with one core, or when they run).
        Before starting any thread: a forked process has only the forking one."""
        if self.procs is None and self.workers > 1:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            barrier = ctx.Barrier(self.workers)
            self.procs = ctx.Pool(self.workers, initializer=_set_worker, initargs=(self.tokenizer, barrier))

    def each_worker(self, fn: Callable[[], object]) -> list:
        """``fn()`` once in every worker process, not waited for (each
        handle's ``get()`` waits and gives its result): for what each worker
        holds, such as rows it cut and has not stored yet. Call it when no
        other work is out: each worker takes one call and waits at a barrier
        until all have theirs, so no worker can take two."""
        if self.procs is None:
            raise RuntimeError("each_worker() needs the worker processes: start() them first")
        return [self.procs.apply_async(_in_each_worker, (fn,)) for _ in range(self.workers)]

    def start_for(self, n_texts: int) -> None:
        """``start()`` when this many texts are worth the processes."""
        if n_texts >= PARALLEL_MIN:
            self.start()

    def close(self) -> None:
        """Stop the worker processes (they hold nothing to keep)."""
        if self.procs is not None:
            self.procs.terminate()
            self.procs = None

    def stream(self, fn: Callable[[Sequence], object], chunks: Iterable[Sequence]) -> Iterator:
        """``fn`` over each chunk in the workers; each chunk's result in order,
        as soon as it is there. At most two chunks per worker are out at once:
        a result not taken yet waits in this process's memory (``imap`` would
        let them all pile up)."""
        if self.procs is None:
            raise RuntimeError("stream() needs the worker processes: start() them first")
        chunks = iter(chunks)
        out = deque(self.procs.apply_async(fn, (c,)) for c in islice(chunks, 2 * self.workers))
        while out:
            result = out.popleft().get()
            nxt = next(chunks, None)
            if nxt is not None:
                out.append(self.procs.apply_async(fn, (nxt,)))
            yield result

    def chunk_size(self, n_items: int) -> int:
        """Items per chunk: six chunks per worker, 500 to 4,000 each (small
        enough to share the work out evenly, large enough to be worth a trip)."""
        return max(500, min(4000, n_items // (self.workers * 6) or 500))

    def _chunks(self, texts: Sequence[str]) -> list[Sequence[str]]:
        size = self.chunk_size(len(texts))
        return [texts[i:i + size] for i in range(0, len(texts), size)]

    def submit(self, fn, texts: Sequence[str]):
        if self.procs is None or len(texts) < PARALLEL_MIN:
            _set_worker(self.tokenizer)
            return _Done(fn(texts))
        return _Pending(self.procs.map_async(fn, self._chunks(texts)))

    def run(self, fn, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list:
        if self.procs is None or len(texts) < PARALLEL_MIN:
            _set_worker(self.tokenizer)
            out = []
            for i in range(0, len(texts), 2000):
                part = fn(texts[i:i + 2000])
                out.extend(part)
                if progress:
                    progress(len(part))
            return out
        out = []
        for part in self.procs.imap(fn, self._chunks(texts)):
            out.extend(part)
            if progress:
                progress(len(part))
        return out

    __call__ = run


class ProcessedPost(NamedTuple):
    tokens: str       # space-separated
    clean: str
    topics: str       # tab-separated
    mentions: str
    emoticons: str


_WORKER: Tokenizer | None = None


_BARRIER = None
EACH_WORKER_TIMEOUT_S = 600      # a worker that never comes to the barrier (it died) fails the call, not the wait


def _set_worker(tokenizer: Tokenizer, barrier=None) -> None:
    """Pool initializer: the tokenizer this process uses and the pool's
    barrier (per-process slots, set once)."""
    global _WORKER, _BARRIER
    _WORKER = tokenizer.warm()
    _BARRIER = barrier


def _in_each_worker(fn: Callable[[], object]) -> object:
    _BARRIER.wait(EACH_WORKER_TIMEOUT_S)
    return fn()


def worker_tokenizer() -> Tokenizer:
    """The tokenizer of this worker process (set when the pool started it):
    for other steps the pool runs, such as summing users up."""
    if _WORKER is None:
        raise RuntimeError("not in a tokenizer worker: run this through Tokenizer.pool()")
    return _WORKER


def tokenize_chunk(texts: Sequence[str]) -> list[list[str]]:
    """Worker step: this process's tokenizer cuts these cleaned texts."""
    assert _WORKER is not None
    return [_WORKER.tokenize(t) for t in texts]


def process_chunk(texts: Sequence[str]) -> list[tuple[str, str, str, str, str]]:
    """Worker step: this process's tokenizer cleans and cuts these raw posts
    (what the token cache stores; hand it to a pool runner's ``submit``).

    Plain tuples in ``ProcessedPost``'s field order: a named tuple is pickled
    with its class, and sending 100k of them back from the workers cost more
    than a third of the main process's share of tokenising.
    """
    assert _WORKER is not None
    return [tuple(_WORKER.process_post(t)) for t in texts]
