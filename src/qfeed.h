/*
 * qfeed.h - the durable queue inside the engine: producers append records
 * to the store (qstore.c) and are acknowledged once they are durable; a
 * feeder thread reads each endpoint's cursor and hands single-endpoint
 * deliveries to the I/O loop, and acknowledges each record to the store
 * when its delivery ends. Internal to the plugin.
 *
 * Layer: engine, above the handoff and the delivery object; below the
 * producer side (submit.c), which appends through it. The I/O loop never
 * sees it: its deliveries arrive on the handoff like any other, and their
 * completion callbacks lead back here.
 */
#ifndef PW_QFEED_H
#define PW_QFEED_H

#include <stdint.h>
#include <sys/uio.h>

#include "pyroscope_write.h"

struct pw_sender;
struct pw_snapshot;
struct pw_qfeed;
struct strbuf;

/*
 * Opens (or creates) the queue in snap's queue.directory, resumes each of
 * snap's endpoints from its saved position (a new one starts with new
 * profiles only), drops the backlog of endpoints no longer configured, and
 * starts feeding. NULL with a malloc'd *err naming queue.directory.
 */
struct pw_qfeed *pw_qfeed_open(struct pw_sender *eng, struct pw_snapshot *snap, char **err);
/* Same directory, new snapshot: new limits, endpoints kept, added or
 * removed by name. */
void pw_qfeed_update(struct pw_qfeed *qf, struct pw_snapshot *snap);
/* The directory this feeder writes to. */
const char *pw_qfeed_directory(const struct pw_qfeed *qf);
/* Stops handing out records (what is under way goes on and is still
 * acknowledged). */
void pw_qfeed_stop(struct pw_qfeed *qf);
/* Stops if needed, then closes the store (a final checkpoint) and drops
 * the opener's reference. Later completions are ignored: their records
 * are sent again by whoever opens the directory next. Accepts NULL. */
void pw_qfeed_close(struct pw_qfeed *qf);
void pw_qfeed_ref(struct pw_qfeed *qf);
void pw_qfeed_unref(struct pw_qfeed *qf);

/*
 * Appends one record (the iovecs, concatenated) holding nprofiles
 * profiles. COMPONENT_OK: done(user, status, error) will be called once
 * the record is durable (status COMPONENT_OK) or could not be made so.
 * COMPONENT_EOVERLOAD (full and when_full is refuse, or no room at all),
 * COMPONENT_EINVAL (larger than queue.max_size) and COMPONENT_ESHUTDOWN
 * (the queue is closing) come with *err (malloc'd) and no callback.
 * Any thread.
 */
typedef void (*pw_qfeed_done_fn)(void *user, int status, const char *error);
/* The most pieces (iovcnt) one append takes. */
#define PW_QFEED_MAX_IOV 1000
int pw_qfeed_append(struct pw_qfeed *qf, const struct iovec *iov, int iovcnt, uint32_t nprofiles,
		    pw_qfeed_done_fn done, void *user, char **err);

/* Appends the debug view of the queue (a JSON object) to sb. */
void pw_qfeed_debug(struct pw_qfeed *qf, struct strbuf *sb);

#endif /* PW_QFEED_H */
