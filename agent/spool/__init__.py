"""The spool: the one owner of a document's state, the folder it is in and its row in state.db.

A document's state is the folder it is in plus its row in state.db. Each move is ordered so
that a `kill -9` between any two steps leaves something `recover()` can finish:

claim   1. open the dropped file once (O_NOFOLLOW | O_NONBLOCK), fstat: a regular file
        2. copy it from that descriptor into processing/.claim-*.tmp, hashing as it goes,
           fsync                                  (crash: recover() removes the .tmp; the
                                                   dropped file is still in incoming/)
        3. row `claiming` + receipt, committed    (crash: recover() drops the row)
        4. rename the copy to processing/<id>.pdf, fsync
                                                  (crash: recover() sees the file -> queued)
        5. row `queued`, committed
        6. unlink the dropped file                (crash before: it is seen again, and its
                                                   receipt says it was taken: it is removed
                                                   without a second document or message)
convert (an image: the pipeline makes the PDF it reads from the claimed copy)
        1. link processing/<id>.pdf as processing/<id>.original, fsync
                                                  (crash: the original is the claimed copy)
        2. the PDF written to processing/.convert-<id>.tmp, fsync'd, renamed over
           processing/<id>.pdf                    (crash before: the .tmp is removed, and the
                                                   conversion starts again from the original)
place   1. row `filing` with the chosen destination and the whole result, committed
        2. hard-link the PDF to its destination   (link() never overwrites: a name clash
                                                   gets a suffix), then the original beside
                                                   it (an image), then the sidecars
        3. row final + outbox message, one commit (crash before: recover() redoes 2 and 3)
        4. unlink processing/<id>.pdf (and .original) (crash before: recover() unlinks them)

Why a copy and never a rename or link of the dropped file: that inode belongs to whoever
dropped it. Kept, it would let them write into the archive through a descriptor opened
before the drop, and Debian's fs.protected_hardlinks refuses link() on another user's file
the daemon cannot write. A check of the name followed by a rename of the name is also a race
(a symlink or a FIFO swapped in between); every check and every byte here come from the one
descriptor. So every file under processing/, done/, review/ and failed/ is docagent's own,
created with modes.FILE, and the bytes archived are the bytes hashed.

Nothing is ever overwritten, and the bytes received are never changed: the archive holds the
original content (for an image, beside the PDF made from it; a failed image is kept as it
came). The row's sha256 is always that of the bytes received, so duplicates are judged on them.

The package: `files` (names, durable writes, the one way a dropped file is opened), `rows`
(the row: states, questions and changes), `claim`, `place` (and the way back for a person's
decision), `recover`. Nothing outside it writes a document's row or moves its file.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.spool.claiming import (
        Claim,
        StillChanging,
        claim,
        claim_stream,
        is_not_downloaded,
        is_refusal,
        received,
        refuse_unread,
        taken_before,
    )
    from agent.spool.files import (
        FOLDERS,
        NotRegular,
        NotTaken,
        OverLimit,
        conversion_path,
        display_name,
        ensure_folders,
        files_under,
        ignored,
        keep_original,
        kept_name,
        open_dropped,
        original_path,
        owner_of,
        pdf_stem,
        processing_path,
        safe_name,
        sidecar,
        stray_folders,
        swap_in_pdf,
    )
    from agent.spool.placing import (
        DECIDED,
        Placement,
        companion_files,
        failure_result,
        place,
        requeue,
        take_back,
        text_of,
    )
    from agent.spool.recovery import recover
    from agent.spool.rows import (
        CLAIMING,
        FAILED,
        FILED,
        FILING,
        FINAL_STATES,
        PROCESSING,
        QUEUED,
        REVIEW,
        Document,
        by_state,
        count_crash,
        counts_by_state,
        defer,
        deferred_count,
        documents,
        duplicates,
        failed_since,
        find,
        get,
        last_filed,
        last_finished_at,
        oldest_queued,
        queued_count,
        review_backlog,
        start,
        start_next,
        state_term,
        state_word,
    )

# Each name is imported from its module when first asked for (PEP 562), so that `docagent
# status`, which reads rows only, does not load the claiming and placing machinery (the
# stages, the tools, the audit) with every start.
_HOME = {
    "Claim": "claiming",
    "StillChanging": "claiming",
    "claim": "claiming",
    "claim_stream": "claiming",
    "is_not_downloaded": "claiming",
    "is_refusal": "claiming",
    "received": "claiming",
    "refuse_unread": "claiming",
    "taken_before": "claiming",
    "FOLDERS": "files",
    "NotRegular": "files",
    "NotTaken": "files",
    "OverLimit": "files",
    "display_name": "files",
    "ensure_folders": "files",
    "files_under": "files",
    "conversion_path": "files",
    "ignored": "files",
    "keep_original": "files",
    "kept_name": "files",
    "open_dropped": "files",
    "original_path": "files",
    "owner_of": "files",
    "pdf_stem": "files",
    "processing_path": "files",
    "safe_name": "files",
    "sidecar": "files",
    "stray_folders": "files",
    "swap_in_pdf": "files",
    "DECIDED": "placing",
    "Placement": "placing",
    "companion_files": "placing",
    "failure_result": "placing",
    "place": "placing",
    "requeue": "placing",
    "take_back": "placing",
    "text_of": "placing",
    "recover": "recovery",
    "CLAIMING": "rows",
    "FAILED": "rows",
    "FILED": "rows",
    "FILING": "rows",
    "FINAL_STATES": "rows",
    "PROCESSING": "rows",
    "QUEUED": "rows",
    "REVIEW": "rows",
    "Document": "rows",
    "by_state": "rows",
    "count_crash": "rows",
    "counts_by_state": "rows",
    "defer": "rows",
    "deferred_count": "rows",
    "documents": "rows",
    "duplicates": "rows",
    "failed_since": "rows",
    "find": "rows",
    "get": "rows",
    "last_filed": "rows",
    "last_finished_at": "rows",
    "oldest_queued": "rows",
    "queued_count": "rows",
    "review_backlog": "rows",
    "start": "rows",
    "start_next": "rows",
    "state_term": "rows",
    "state_word": "rows",
}


if not TYPE_CHECKING:  # mypy keeps checking every name against the imports above
    def __getattr__(name: str) -> object:
        import importlib

        module = _HOME.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


__all__ = [
    "CLAIMING", "DECIDED", "FAILED", "FILED", "FILING", "FINAL_STATES", "FOLDERS", "PROCESSING",
    "QUEUED", "REVIEW", "Claim", "Document", "NotRegular", "NotTaken", "OverLimit", "Placement",
    "StillChanging", "by_state", "claim", "claim_stream", "companion_files", "conversion_path",
    "count_crash", "counts_by_state", "defer", "deferred_count", "display_name", "documents",
    "duplicates", "ensure_folders", "failed_since", "failure_result", "files_under", "find", "get",
    "ignored", "is_not_downloaded", "is_refusal", "keep_original", "kept_name", "last_filed",
    "last_finished_at", "oldest_queued", "open_dropped", "original_path", "owner_of", "pdf_stem",
    "place", "processing_path", "queued_count", "received", "recover", "refuse_unread", "requeue",
    "review_backlog", "safe_name", "sidecar", "start", "start_next", "state_term", "state_word",
    "stray_folders", "swap_in_pdf", "take_back", "taken_before",
    "text_of",
]
