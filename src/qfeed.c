/*
 * qfeed.c - the durable queue inside the engine: appends for the producer
 * side, and the feeder thread that turns each endpoint's backlog into
 * deliveries and acknowledges them to the store as they end.
 *
 * Layer: engine, above the handoff, the delivery object and the store;
 * below the producer side. Locks, in the order they may be taken:
 * close_lock (shared by producers appending and by completions on the I/O
 * thread handing over acknowledgments; taken alone by a reload that may
 * remove cursors and by closing), then lock (the feeder's state, held
 * while it reads from disk and acknowledges: completions never take it),
 * then the store's own; wake_lock alone.
 *
 * Completions never take the store's lock either: the I/O thread is the
 * one that sends, and an append holds that lock while it writes. A record
 * delivered goes onto its endpoint's list of acknowledgments (lock-free);
 * the feeder takes the list whenever it runs, which it does at the latest
 * when a quarter of the window has come back, and acknowledges it to the
 * store in one go. Deleting the segments passed happens there too. Near
 * max_size an append takes the feeder's lock and the lists first, so that
 * the room they free is not missed.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "qfeed.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "labels.h"
#include "qrec.h"
#include "qstore.h"
#include "util/clock.h"
#include "util/jsonstr.h"

_Static_assert(PW_QFEED_MAX_IOV <= PWQ_MAX_IOV, "an append's pieces fit the store's");

/* Records in flight per endpoint: enough to keep every connection busy
 * (or fill two batches) without reading far ahead of what is sent. */
#define WINDOW_MIN 4
#define WINDOW_MAX 4096
/* How often the gauges are refreshed and expiry is looked at when nothing
 * else wakes the feeder. */
#define IDLE_PASS_NS (1000 * 1000000LL)
/* How often the backlog gauges are refreshed while records flow. */
#define PUBLISH_MS 250

/* One endpoint's cursor. Never freed before the feeder: completions may
 * still point here after the endpoint leaves the configuration. */
struct qf_ep {
	char *name; /* the endpoint's display name: the cursor's name */
	struct pwq_cursor *c;
	struct pw_ep_metrics *m;
	size_t idx; /* in snap->eps */
	bool removed;
	/* What its deliveries under way should do: 0 go on, 1 end as dropped
	 * (removed), 2 end shelved (the queue closed). See delivery.h. */
	atomic_int abandon;
	/* Records and bytes in flight: the feeder adds, completions on the
	 * I/O thread take away without the feeder's lock. */
	atomic_int inflight;
	int window;
	/* How many records it may have in flight now: from WINDOW_MIN, one
	 * more per delivered record up to window, back to WINDOW_MIN while
	 * the endpoint is failing. A dead endpoint then holds a few records
	 * in memory, not a window of them, however large the backlog. */
	atomic_int cwnd;
	_Atomic int64_t inflight_bytes;
	int64_t byte_share; /* what it may hold in flight when others hold some too */
	/* A record read but not handed over yet (no room in the budget). */
	struct pwq_rec held;
	bool has_held;
	/* Records delivered and not yet acknowledged to the store: pushed by
	 * completions, taken by the feeder (see the top of the file). */
	_Atomic(struct qf_item *) acks;
};

struct pw_qfeed {
	_Atomic int refs;
	/* The engine, for the handoff and the budget: only while feeding (the
	 * feeder stops before the engine goes). The metrics and the logger
	 * outlive both: the store's callbacks use them until it is closed. */
	struct pw_sender *eng;
	struct pw_metrics *metrics;
	struct pw_logger log;
	char *dir;

	pthread_rwlock_t close_lock;
	struct pwq *q; /* NULL once closed; guarded by close_lock and lock */

	pthread_mutex_t lock;
	struct pw_snapshot *snap;
	struct qf_ep **eps;
	size_t neps;
	int64_t max_age_ms;
	int64_t next_publish_ms; /* feeder thread only */
	bool stop;

	pthread_t thread;
	bool thread_started;

	pthread_mutex_t wake_lock;
	pthread_cond_t wake_cond;
	bool wake_pending;
	/* Set by the feeder when an endpoint has read everything: the next
	 * append wakes it. Otherwise appends leave it asleep, since what
	 * wakes it then is its deliveries coming back. */
	atomic_bool at_tail;
	/* Bytes on disk, as the store last reported them (on_bytes). */
	_Atomic int64_t bytes;
};

/* One record in flight to one endpoint. */
struct qf_item {
	struct pw_qfeed *qf;
	struct qf_ep *fe;
	uint64_t seq;
	int64_t bytes;
	int refill_at; /* in flight at or below which the feeder is woken */
	int window; /* the endpoint's window when the record went out */
	struct delivery *d;
	struct qf_item *next_ack; /* on fe->acks */
};

/* A producer's append waiting to become durable. */
struct qf_append {
	pw_qfeed_done_fn done;
	void *user;
};

void pw_qfeed_ref(struct pw_qfeed *qf)
{
	atomic_fetch_add(&qf->refs, 1);
}

/* Takes fe's acknowledgments; with ack, gives them to the store, else only
 * frees them. Called with the feeder's lock held, or close_lock for
 * writing (the cursor stays meanwhile). */
static void take_acks(struct pw_qfeed *qf, struct qf_ep *fe, bool ack)
{
	struct qf_item *it = atomic_exchange(&fe->acks, NULL);
	uint64_t seqs[256];
	size_t n = 0;

	while (it) {
		struct qf_item *next = it->next_ack;

		seqs[n++] = it->seq;
		if (n == sizeof(seqs) / sizeof(seqs[0]) || !next) {
			if (ack && qf->q)
				pwq_ack_many(qf->q, fe->c, seqs, n);
			n = 0;
		}
		free(it);
		it = next;
	}
}

static void qf_free(struct pw_qfeed *qf)
{
	for (size_t i = 0; i < qf->neps; i++) {
		struct qf_ep *fe = qf->eps[i];

		take_acks(qf, fe, false);
		if (fe->has_held)
			free(fe->held.data);
		free(fe->name);
		free(fe);
	}
	free(qf->eps);
	pw_snapshot_unref(qf->snap);
	free(qf->dir);
	pthread_rwlock_destroy(&qf->close_lock);
	pthread_mutex_destroy(&qf->lock);
	pthread_mutex_destroy(&qf->wake_lock);
	pthread_cond_destroy(&qf->wake_cond);
	free(qf);
}

void pw_qfeed_unref(struct pw_qfeed *qf)
{
	if (qf && atomic_fetch_sub(&qf->refs, 1) == 1)
		qf_free(qf);
}

static void kick(struct pw_qfeed *qf)
{
	pthread_mutex_lock(&qf->wake_lock);
	qf->wake_pending = true;
	pthread_cond_signal(&qf->wake_cond);
	pthread_mutex_unlock(&qf->wake_lock);
}

/* ---- the store's callbacks: metrics only ---- */

static void on_fsync(void *arg, double seconds, size_t records)
{
	struct pw_qfeed *qf = arg;

	(void)records;
	pw_metrics_queue_fsync(qf->metrics, seconds);
}

static void on_bytes(void *arg, int64_t bytes)
{
	struct pw_qfeed *qf = arg;

	atomic_store_explicit(&qf->bytes, bytes, memory_order_relaxed);
	pw_metrics_queue_bytes(qf->metrics, bytes);
}

/* Profiles the store lost for a cursor: the oldest ones, to make room, or
 * damaged ones. Counted in the general dropped series as well, so that
 * sent + dropped still covers every profile (their bytes are not known). */
static void on_drop(void *arg, const char *cursor, int reason, uint64_t profiles)
{
	struct pw_qfeed *qf = arg;
	struct pw_ep_metrics *m = pw_metrics_endpoint(qf->metrics, cursor);

	if (!m || !profiles)
		return;
	pw_metrics_queue_dropped(m, reason == PWQ_DROP_CORRUPT ? PW_QDROP_CORRUPT : PW_QDROP_FULL,
				 profiles);
	pw_metrics_dropped(m, 0, profiles);
}

/* ---- endpoints and their cursors ---- */

static void set_limits(struct pw_qfeed *qf, struct qf_ep *fe, const struct pw_snapshot *snap)
{
	const struct pw_config *cfg = pw_snapshot_config(snap);
	const struct pw_endpoint_config *c = snap->eps[fe->idx]->cfg;
	int64_t w = 2 * (c->max_connections > 0 ? c->max_connections : DEFAULT_MAX_CONNECTIONS);
	int64_t budget =
		cfg->max_inflight_bytes > 0 ? cfg->max_inflight_bytes : DEFAULT_MAX_INFLIGHT_BYTES;

	if (c->batch.set && 2 * c->batch.max_profiles > w)
		w = 2 * c->batch.max_profiles;
	fe->window = (int)(w < WINDOW_MIN ? WINDOW_MIN : w > WINDOW_MAX ? WINDOW_MAX : w);
	fe->byte_share = budget / (int64_t)(snap->neps ? snap->neps : 1);
	fe->m = snap->eps[fe->idx]->m;
	(void)qf;
}

static struct qf_ep *find_ep(struct pw_qfeed *qf, const char *name)
{
	for (size_t i = 0; i < qf->neps; i++)
		if (!qf->eps[i]->removed && strcmp(qf->eps[i]->name, name) == 0)
			return qf->eps[i];
	return NULL;
}

static void count_removed(struct pw_qfeed *qf, const char *name, uint64_t profiles)
{
	struct pw_ep_metrics *m = pw_metrics_endpoint(qf->metrics, name);

	if (!m || !profiles)
		return;
	pw_metrics_queue_dropped(m, PW_QDROP_REMOVED, profiles);
	pw_metrics_dropped(m, 0, profiles);
	pw_log(&qf->log, COMPONENT_LOG_WARN, "queued profiles dropped", "endpoint", name, "reason",
	       "the endpoint is no longer configured", PW_LOG_END);
}

/* The endpoint left the configuration: what it has not read is dropped
 * here; what it has in flight ends at its next attempt (on_delivered()
 * counts it then, unless that attempt delivers it). */
static void remove_ep(struct pw_qfeed *qf, struct qf_ep *fe)
{
	struct pwq_cursor_stat st;
	uint64_t reading;

	fe->removed = true;
	atomic_store(&fe->abandon, 1);
	take_acks(qf, fe, false); /* the cursor goes: nothing to acknowledge */
	if (fe->has_held) {
		free(fe->held.data);
		fe->has_held = false;
	}
	pwq_cursor_stat(qf->q, fe->c, &st);
	reading = st.read.cum - st.committed.cum;
	pwq_cursor_remove(qf->q, fe->name);
	count_removed(qf, fe->name,
		      st.backlog_profiles > reading ? st.backlog_profiles - reading : 0);
	pw_metrics_queue_backlog(fe->m, 0);
	pw_metrics_queue_oldest_age(fe->m, 0);
}

/*
 * The cursor name of snap's endpoint i: its name, or its URL without
 * credentials (the display name). Two endpoints with the same one (the
 * same URL, no names) get "#2", "#3"... in order, so each has a cursor of
 * its own. Malloc'd.
 */
static char *ep_key(const struct pw_snapshot *snap, size_t i)
{
	const char *display = snap->eps[i]->cfg->display;
	int k = 1;

	for (size_t j = 0; j < i; j++)
		if (strcmp(snap->eps[j]->cfg->display, display) == 0)
			k++;
	return k == 1 ? pw_strdup(display) : pw_asprintf("%s#%d", display, k);
}

static int add_ep(struct pw_qfeed *qf, size_t idx, const struct pw_snapshot *snap, bool opening)
{
	struct qf_ep *fe = calloc(1, sizeof(*fe)), **eps;
	uint64_t backlog = 0;

	if (!fe)
		return -1;
	fe->name = ep_key(snap, idx);
	eps = realloc(qf->eps, (qf->neps + 1) * sizeof(*eps));
	if (!fe->name || !eps) {
		free(fe->name);
		free(fe);
		if (eps)
			qf->eps = eps;
		return -1;
	}
	qf->eps = eps;
	fe->idx = idx;
	atomic_init(&fe->cwnd, WINDOW_MIN);
	set_limits(qf, fe, snap);
	fe->c = pwq_cursor_get(qf->q, fe->name, &backlog);
	if (!fe->c) {
		free(fe->name);
		free(fe);
		return -1;
	}
	qf->eps[qf->neps++] = fe;
	if (opening && backlog > 0) {
		char n[24];

		pw_metrics_queue_replayed(fe->m, backlog);
		snprintf(n, sizeof(n), "%" PRIu64, backlog);
		pw_log(&qf->log, COMPONENT_LOG_INFO, "resuming queued profiles", "endpoint",
		       fe->name, "profiles", n, PW_LOG_END);
	}
	return 0;
}

/* Matches the cursors to snap's endpoints by name: kept, new (at the
 * tail), or gone (their backlog dropped). Called with lock held. */
static int reconcile(struct pw_qfeed *qf, struct pw_snapshot *snap, bool opening)
{
	bool *seen = calloc(qf->neps + 1, sizeof(bool));
	size_t nold = qf->neps;
	int rc = 0;

	if (!seen)
		return -1;
	for (size_t i = 0; i < snap->neps; i++) {
		char *key = ep_key(snap, i);
		struct qf_ep *fe;

		if (!key) {
			rc = -1;
			continue;
		}
		fe = find_ep(qf, key);
		free(key);
		if (fe) {
			for (size_t j = 0; j < nold; j++)
				if (qf->eps[j] == fe)
					seen[j] = true;
			fe->idx = i;
			set_limits(qf, fe, snap);
		} else if (add_ep(qf, i, snap, opening) < 0) {
			rc = -1;
		}
	}
	for (size_t j = 0; j < nold; j++)
		if (!seen[j] && !qf->eps[j]->removed)
			remove_ep(qf, qf->eps[j]);
	free(seen);
	pw_snapshot_ref(snap);
	pw_snapshot_unref(qf->snap);
	qf->snap = snap;
	qf->max_age_ms = pw_snapshot_config(snap)->queue.max_age_ns / 1000000;
	return rc;
}

/* Cursors saved on disk for endpoints that are no longer configured. */
static void drop_unknown_cursors(struct pw_qfeed *qf)
{
	char **names = NULL;
	size_t n = pwq_cursor_names(qf->q, &names);

	for (size_t i = 0; i < n; i++) {
		if (!find_ep(qf, names[i]))
			count_removed(qf, names[i], pwq_cursor_remove(qf->q, names[i]));
		free(names[i]);
	}
	free(names);
}

/* ---- from records to deliveries ---- */

static void on_delivered(void *user, const struct pw_result *r)
{
	struct qf_item *it = user;
	struct pw_qfeed *qf = it->qf;
	struct qf_ep *fe = it->fe;
	/* Cancelled at shutdown: the record stays on disk for the next start. */
	bool done = r->status != COMPONENT_ESHUTDOWN, ack;
	int64_t bytes = it->bytes;
	int why, left, refill_at = it->refill_at;

	/* close_lock, held for writing while a cursor is removed or the store
	 * closed, orders the hand-over with both: they take fe->acks after. */
	pthread_rwlock_rdlock(&qf->close_lock);
	why = atomic_load(&fe->abandon);
	ack = done && qf->q && why == 0;
	if (r->status == COMPONENT_OK) {
		int w = atomic_load(&fe->cwnd);

		while (w < it->window && !atomic_compare_exchange_weak(&fe->cwnd, &w, w + 1))
			;
	}
	if (it->d->expired)
		pw_metrics_queue_dropped(fe->m, PW_QDROP_EXPIRED, it->d->nprofiles);
	else if (why == 1 && done && r->status != COMPONENT_OK)
		pw_metrics_queue_dropped(fe->m, PW_QDROP_REMOVED, it->d->nprofiles);
	if (ack) {
		/* The last use of it: the feeder may free it from here on. Listed
		 * before it stops counting as in flight, so a record no longer
		 * in flight is one the store will hear of. */
		it->next_ack = atomic_load(&fe->acks);
		while (!atomic_compare_exchange_weak(&fe->acks, &it->next_ack, it))
			;
	} else {
		free(it);
	}
	atomic_fetch_sub(&fe->inflight_bytes, bytes);
	left = atomic_fetch_sub(&fe->inflight, 1) - 1;
	pthread_rwlock_unlock(&qf->close_lock);
	/* The feeder refills a quarter of the window at a time rather than
	 * waking for every completion. */
	if (left <= refill_at)
		kick(qf);
	pw_qfeed_unref(qf);
}

/* A record that cannot be sent at all (it does not decode, or its tenant
 * is no longer valid): done with, and counted. */
static void give_up(struct pw_qfeed *qf, struct qf_ep *fe, const struct pwq_rec *rec,
		    uint64_t bytes, const char *why)
{
	char seq[24];

	snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
	pw_metrics_dropped(fe->m, bytes, rec->nprofiles);
	pw_log(&qf->log, COMPONENT_LOG_WARN, "queued profile dropped", "endpoint", fe->name,
	       "record", seq, "err", why, PW_LOG_END);
	pwq_ack(qf->q, fe->c, rec->seq);
}

enum handover { HO_SENT, HO_DONE, HO_HELD, HO_STOP };

static enum handover build(struct pw_qfeed *qf, struct qf_ep *fe, struct pwq_rec *rec,
			   struct pw_qrec *qr, struct delivery **out)
{
	struct pw_endpoint *ep = qf->snap->eps[fe->idx];
	struct qf_item *it = calloc(1, sizeof(*it));
	struct delivery *d;
	char *err = NULL;

	if (!it)
		return HO_HELD;
	d = pw_delivery_new_durable(&qf->eng->budget, qf->snap, fe->idx, qr->ingest,
				    rec->created_ms + qf->max_age_ms, on_delivered, it);
	if (!d) {
		free(it);
		return HO_HELD;
	}
	it->qf = qf;
	it->fe = fe;
	it->seq = rec->seq;
	it->bytes = (int64_t)qr->body_len;
	it->window = fe->window;
	it->refill_at = fe->window - (fe->window / 4 > 1 ? fe->window / 4 : 1);
	it->d = d;
	d->size = qr->size;
	d->nprofiles = rec->nprofiles;
	d->abandon = &fe->abandon;
	err = pw_delivery_set_tenants(d, qr->in, qr->nin, &qr->external);
	if (!err && qr->ingest) {
		d->tasks[0].url = pw_ingest_url_for(ep->cfg, qr->path_query, &qr->ls, &err);
		d->tasks[0].url_owned = d->tasks[0].url != NULL;
		if (!d->tasks[0].url && !err)
			err = pw_strdup("cannot build the ingest URL");
	}
	if (err) {
		give_up(qf, fe, rec, qr->size, err);
		free(err);
		pw_delivery_free(d);
		free(it);
		return HO_DONE;
	}
	d->ctypes = qr->ctypes;
	d->nctypes = qr->nctypes;
	qr->ctypes = NULL;
	qr->nctypes = 0;
	if (qr->body_len >= PW_STREAM_MIN_BYTES) {
		/* Large: sent from the record as read, which the delivery
		 * takes over, rather than copied once more. */
		d->segs = malloc(sizeof(*d->segs));
		if (!d->segs || pw_delivery_reserve(d, qr->body_len, 0) != PW_RESERVE_OK) {
			pw_delivery_free(d);
			free(it);
			return HO_HELD;
		}
		d->segs[0] = (struct pw_seg){qr->body, qr->body_len};
		d->nsegs = 1;
		d->owned = rec->data;
		d->owned_cap = rec->cap;
		rec->data = NULL;
		d->len = qr->body_len;
	} else if (qr->body_len > 0) {
		if (pw_delivery_reserve(d, qr->body_len, qr->body_len) != PW_RESERVE_OK) {
			pw_delivery_free(d);
			free(it);
			return HO_HELD;
		}
		memcpy(d->payload, qr->body, qr->body_len);
		d->len = qr->body_len;
	}
	*out = d;
	return HO_SENT;
}

/* Turns one record into a delivery for fe and hands it to the I/O loop. */
static enum handover hand_over(struct pw_qfeed *qf, struct qf_ep *fe, struct pwq_rec *rec)
{
	struct delivery *d = NULL;
	struct pw_qrec qr;
	const char *why = NULL;
	enum handover ho;

	if (pw_qrec_decode(rec->data, rec->len, &qr, &why) < 0) {
		pw_metrics_queue_dropped(fe->m, PW_QDROP_CORRUPT, rec->nprofiles);
		give_up(qf, fe, rec, 0, why);
		return HO_DONE;
	}
	ho = build(qf, fe, rec, &qr, &d);
	pw_qrec_free(&qr);
	if (ho != HO_SENT)
		return ho;
	pw_qfeed_ref(qf);
	atomic_fetch_add(&fe->inflight, 1);
	atomic_fetch_add(&fe->inflight_bytes, (int64_t)d->len);
	if (pw_handoff_put(&qf->eng->in, d) != COMPONENT_OK) {
		atomic_fetch_sub(&fe->inflight, 1);
		atomic_fetch_sub(&fe->inflight_bytes, (int64_t)d->len);
		free(d->user);
		pw_delivery_free(d);
		pw_qfeed_unref(qf);
		return HO_STOP;
	}
	return HO_SENT;
}

static void count_expired(struct pw_qfeed *qf, struct qf_ep *fe, uint64_t profiles)
{
	char n[24];

	if (!profiles)
		return;
	pw_metrics_queue_dropped(fe->m, PW_QDROP_EXPIRED, profiles);
	pw_metrics_dropped(fe->m, 0, profiles);
	snprintf(n, sizeof(n), "%" PRIu64, profiles);
	pw_log(&qf->log, COMPONENT_LOG_WARN, "queued profiles expired", "endpoint", fe->name,
	       "profiles", n, "reason", "older than queue.max_age", PW_LOG_END);
}

static int window_now(struct qf_ep *fe)
{
	int w = atomic_load(&fe->cwnd);

	return w < fe->window ? w : fe->window;
}

/* Hands fe's next records to the loop while its window has room. False
 * when the engine is stopping. Called with lock held. */
static bool fill(struct pw_qfeed *qf, struct qf_ep *fe, int64_t now_ms)
{
	bool watching = false;

	if (atomic_load_explicit(&qf->snap->eps[fe->idx]->failing, memory_order_relaxed))
		atomic_store(&fe->cwnd, WINDOW_MIN);
	while (atomic_load(&fe->inflight) < window_now(fe)) {
		struct pwq_rec rec;
		enum handover ho;

		if (fe->has_held) {
			rec = fe->held;
			fe->has_held = false;
		} else {
			int r = pwq_next(qf->q, fe->c, now_ms - qf->max_age_ms, &rec);

			count_expired(qf, fe, rec.expired);
			if (r == 0 && !watching) {
				/* At the tail. Asking appends to wake the feeder
				 * before looking once more means an append this
				 * look misses is one that sees the request. */
				atomic_store(&qf->at_tail, true);
				watching = true;
				continue;
			}
			if (r <= 0)
				return true;
		}
		/* Past its share of the budget, an endpoint waits for its own
		 * deliveries to end: a dead one cannot starve the others. */
		if (atomic_load(&fe->inflight) > 0 &&
		    atomic_load(&fe->inflight_bytes) + (int64_t)rec.len > fe->byte_share)
			ho = HO_HELD;
		else
			ho = hand_over(qf, fe, &rec);
		if (ho == HO_HELD) {
			fe->held = rec;
			fe->has_held = true;
			return true;
		}
		pw_bufcache_put(&qf->eng->budget.bufs, rec.data, rec.cap);
		if (ho == HO_STOP)
			return false;
	}
	return true;
}

static void publish(struct pw_qfeed *qf, int64_t now_ms)
{
	for (size_t i = 0; i < qf->neps; i++) {
		struct qf_ep *fe = qf->eps[i];
		struct pwq_cursor_stat st;

		if (fe->removed)
			continue;
		pwq_cursor_stat(qf->q, fe->c, &st);
		pw_metrics_queue_backlog(fe->m, (int64_t)st.backlog_profiles);
		pw_metrics_queue_oldest_age(
			fe->m, st.oldest_created_ms && now_ms > st.oldest_created_ms
				       ? (double)(now_ms - st.oldest_created_ms) / 1000.0
				       : 0.0);
	}
}

static void *feed_main(void *arg)
{
	struct pw_qfeed *qf = arg;

	pthread_setname_np(pthread_self(), "pw-qfeed");

	for (;;) {
		struct timespec ts;
		int64_t now_ms = pwx_wall_ms();
		bool stop;

		pthread_mutex_lock(&qf->lock);
		stop = qf->stop;
		for (size_t i = 0; i < qf->neps; i++)
			if (!qf->eps[i]->removed)
				take_acks(qf, qf->eps[i], true);
		for (size_t i = 0; i < qf->neps && !stop; i++)
			if (!qf->eps[i]->removed && !fill(qf, qf->eps[i], now_ms))
				stop = true;
		/* The gauges read a record header from disk per endpoint: a
		 * few times a second is enough. */
		if (!stop && now_ms >= qf->next_publish_ms) {
			publish(qf, now_ms);
			qf->next_publish_ms = now_ms + PUBLISH_MS;
		}
		pthread_mutex_unlock(&qf->lock);
		if (stop)
			break;

		pthread_mutex_lock(&qf->wake_lock);
		if (!qf->wake_pending) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += IDLE_PASS_NS / 1000000000LL;
			pthread_cond_timedwait(&qf->wake_cond, &qf->wake_lock, &ts);
		}
		qf->wake_pending = false;
		pthread_mutex_unlock(&qf->wake_lock);
	}
	return NULL;
}

/* ---- lifecycle ---- */

struct pw_qfeed *pw_qfeed_open(struct pw_sender *eng, struct pw_snapshot *snap, char **err)
{
	const struct pw_queue_config *qc = &pw_snapshot_config(snap)->queue;
	struct pw_qfeed *qf = calloc(1, sizeof(*qf));
	pthread_condattr_t ca;
	pthread_rwlockattr_t ra;
	struct pwq_opts o = {0};
	char *e = NULL;

	*err = NULL;
	if (!qf)
		goto oom;
	atomic_init(&qf->refs, 1);
	atomic_init(&qf->at_tail, true);
	qf->eng = eng;
	qf->metrics = eng->metrics;
	qf->log = eng->log;
	qf->dir = pw_strdup(qc->directory);
	/* Readers first: with fsync = "interval" a producer's callback runs
	 * inside its append, under the read lock, and may push again, taking
	 * it a second time; a waiting writer must not block that. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_READER_NP);
	pthread_rwlock_init(&qf->close_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&qf->lock, NULL);
	pthread_mutex_init(&qf->wake_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&qf->wake_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!qf->dir)
		goto oom;
	o.dir = qc->directory;
	o.max_size = qc->max_size;
	o.fsync_always = qc->fsync_always;
	o.fsync_interval_ns = qc->fsync_interval_ns;
	o.drop_oldest = qc->drop_oldest;
	o.log = eng->log;
	o.on_fsync = on_fsync;
	o.on_bytes = on_bytes;
	o.on_drop = on_drop;
	o.arg = qf;
	o.bufs = &eng->budget.bufs;
	qf->q = pwq_open(&o, &e);
	if (!qf->q) {
		*err = pw_asprintf("queue.directory: %s", e ? e : "cannot open the queue");
		free(e);
		qf_free(qf);
		return NULL;
	}
	pthread_mutex_lock(&qf->lock);
	if (reconcile(qf, snap, true) < 0) {
		pthread_mutex_unlock(&qf->lock);
		pwq_close(qf->q);
		qf_free(qf);
		goto oom;
	}
	drop_unknown_cursors(qf);
	/* Saved before the first append: a crash must not find a profile
	 * acknowledged for an endpoint whose cursor is on no file. */
	pwq_checkpoint(qf->q);
	pthread_mutex_unlock(&qf->lock);
	if (pthread_create(&qf->thread, NULL, feed_main, qf) != 0) {
		*err = pw_strdup("queue: cannot start the feeder thread");
		pwq_close(qf->q);
		qf_free(qf);
		return NULL;
	}
	qf->thread_started = true;
	return qf;
oom:
	if (qf && !qf->q)
		qf_free(qf);
	*err = pw_strdup("out of memory");
	return NULL;
}

void pw_qfeed_update(struct pw_qfeed *qf, struct pw_snapshot *snap)
{
	const struct pw_queue_config *qc = &pw_snapshot_config(snap)->queue;

	/* Removing a cursor must not race a completion acknowledging to it. */
	pthread_rwlock_wrlock(&qf->close_lock);
	pthread_mutex_lock(&qf->lock);
	pwq_set_limits(qf->q, qc->max_size, qc->fsync_always, qc->fsync_interval_ns,
		       qc->drop_oldest);
	if (reconcile(qf, snap, false) < 0)
		pw_log(&qf->log, COMPONENT_LOG_ERROR,
		       "queue: out of memory while matching endpoints to cursors", PW_LOG_END);
	pwq_checkpoint(qf->q);
	pthread_mutex_unlock(&qf->lock);
	pthread_rwlock_unlock(&qf->close_lock);
	kick(qf);
}

const char *pw_qfeed_directory(const struct pw_qfeed *qf)
{
	return qf->dir;
}

void pw_qfeed_stop(struct pw_qfeed *qf)
{
	if (!qf || !qf->thread_started)
		return;
	pthread_mutex_lock(&qf->lock);
	qf->stop = true;
	pthread_mutex_unlock(&qf->lock);
	kick(qf);
	pthread_join(qf->thread, NULL);
	qf->thread_started = false;
}

void pw_qfeed_close(struct pw_qfeed *qf)
{
	struct pwq *q;

	if (!qf)
		return;
	pw_qfeed_stop(qf);
	pthread_rwlock_wrlock(&qf->close_lock);
	pthread_mutex_lock(&qf->lock);
	/* What was delivered is acknowledged. Deliveries still under way end
	 * at their next attempt, shelved: their records stay in this directory
	 * for whoever opens it next. */
	for (size_t i = 0; i < qf->neps; i++) {
		if (!qf->eps[i]->removed) {
			take_acks(qf, qf->eps[i], true);
			atomic_store(&qf->eps[i]->abandon, 2);
		}
	}
	q = qf->q;
	qf->q = NULL;
	pthread_mutex_unlock(&qf->lock);
	pthread_rwlock_unlock(&qf->close_lock);
	/* Without our locks: closing calls the callbacks of appends still
	 * waiting for their flush, and a host may push again from one (it
	 * then finds the queue closed). */
	pwq_close(q);
	pw_qfeed_unref(qf);
}

/* ---- appends ---- */

static void on_durable(void *user, int status)
{
	struct qf_append *a = user;

	if (status == PWQ_OK)
		a->done(a->user, COMPONENT_OK, NULL);
	else
		a->done(a->user, COMPONENT_EDELIVERY,
			"queue: the profile could not be made durable (fsync failed)");
	free(a);
}

/* Near max_size, what is delivered but still on the endpoints' lists is
 * handed to the store before an append, so that the segments it frees make
 * room rather than the append dropping records or being refused for lack
 * of it. Under the feeder's lock: a list the feeder has taken is in the
 * store once the lock is ours. Called with close_lock held for reading. */
static void reclaim_if_near_full(struct pw_qfeed *qf, const struct iovec *iov, int iovcnt)
{
	int64_t len = 64 << 10, max = pw_snapshot_config(qf->snap)->queue.max_size;

	for (int i = 0; i < iovcnt; i++)
		len += 2 * (int64_t)iov[i].iov_len;
	if (atomic_load_explicit(&qf->bytes, memory_order_relaxed) + len < max)
		return;
	pthread_mutex_lock(&qf->lock);
	for (size_t i = 0; i < qf->neps; i++)
		if (!qf->eps[i]->removed)
			take_acks(qf, qf->eps[i], true);
	pthread_mutex_unlock(&qf->lock);
}

int pw_qfeed_append(struct pw_qfeed *qf, const struct iovec *iov, int iovcnt, uint32_t nprofiles,
		    pw_qfeed_done_fn done, void *user, char **err)
{
	struct qf_append *a = malloc(sizeof(*a));
	int rc;

	*err = NULL;
	if (!a) {
		*err = pw_strdup("out of memory");
		return COMPONENT_ENOMEM;
	}
	a->done = done;
	a->user = user;
	pthread_rwlock_rdlock(&qf->close_lock);
	if (qf->q)
		reclaim_if_near_full(qf, iov, iovcnt);
	rc = qf->q ? pwq_append(qf->q, pwx_wall_ms(), nprofiles, iov, iovcnt, on_durable, a) : -1;
	pthread_rwlock_unlock(&qf->close_lock);
	switch (rc) {
	case PWQ_OK:
		if (atomic_exchange(&qf->at_tail, false))
			kick(qf);
		return COMPONENT_OK;
	case -1:
		*err = pw_strdup("queue: closed by a configuration change; try again");
		rc = COMPONENT_ESHUTDOWN;
		break;
	case PWQ_FULL:
		*err = pw_strdup("queue: full (queue.max_size or the disk) and when_full is "
				 "\"refuse\", or nothing is left to drop");
		rc = COMPONENT_EOVERLOAD;
		break;
	case PWQ_TOO_BIG:
		*err = pw_strdup("queue: the profile is larger than queue.max_size allows");
		rc = COMPONENT_EOVERLOAD;
		break;
	case PWQ_NOMEM:
		*err = pw_strdup("out of memory");
		rc = COMPONENT_ENOMEM;
		break;
	default:
		*err = pw_strdup("queue: cannot write to the queue directory");
		rc = COMPONENT_EDELIVERY;
		break;
	}
	free(a);
	return rc;
}

/* ---- debug view ---- */

static void put_pos(struct strbuf *sb, const char *key, const struct pwq_pos *p)
{
	strbuf_printf(sb,
		      "\"%s\":{\"segment\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"seq\":%" PRIu64 "}",
		      key, p->seg, p->off, p->seq);
}

void pw_qfeed_debug(struct pw_qfeed *qf, struct strbuf *sb)
{
	int64_t now_ms = pwx_wall_ms();
	bool first = true;

	pthread_mutex_lock(&qf->lock);
	strbuf_puts(sb, "{\"directory\":");
	pwx_json_quote(sb, qf->dir, 0);
	strbuf_printf(sb, ",\"bytes\":%" PRId64 ",\"endpoints\":[", qf->q ? pwq_bytes(qf->q) : 0);
	for (size_t i = 0; qf->q && i < qf->neps; i++) {
		struct qf_ep *fe = qf->eps[i];
		struct pwq_cursor_stat st;

		if (fe->removed)
			continue;
		pwq_cursor_stat(qf->q, fe->c, &st);
		strbuf_puts(sb, first ? "{\"name\":" : ",{\"name\":");
		first = false;
		pwx_json_quote(sb, fe->name, 0);
		strbuf_printf(sb,
			      ",\"backlog_profiles\":%" PRIu64 ",\"backlog_records\":%" PRIu64
			      ",\"oldest_age_seconds\":%.3f,\"in_flight\":%d,",
			      st.backlog_profiles, st.backlog_records,
			      st.oldest_created_ms
				      ? (double)(now_ms - st.oldest_created_ms) / 1000.0
				      : 0.0,
			      atomic_load(&fe->inflight));
		put_pos(sb, "committed", &st.committed);
		strbuf_putc(sb, ',');
		put_pos(sb, "read", &st.read);
		strbuf_putc(sb, '}');
	}
	strbuf_puts(sb, "]}");
	pthread_mutex_unlock(&qf->lock);
}
