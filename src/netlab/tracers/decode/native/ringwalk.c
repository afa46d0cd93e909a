/*
 * The tracefs tracer's hot loop in C: walk ring-buffer pages into fixed records, then follow
 * packets by skb address across the CPUs' time-merged records.
 *
 * Why C: a 200,000-drop flood is 800,000 ring-buffer records; CPython spends ~2.5 us on each
 * (decode, a Record object, a dict update), ~9 s in all, where a user waits for the answer.
 * Here a record costs tens of nanoseconds and Python only sees what it must decide or keep:
 * one output per drop or completed path, and each *distinct* path step once.
 *
 * The meaning stays in Python (netlab/tracers/decode/native/__init__.py is the binding, correlate.py
 * the rules): which events exist and where their fields are come from the kernel's format
 * files (rw_spec, field offsets found by name); whether a hop continues a packet or starts a
 * new one is decided by Python against the lab's link graph, once per (path so far, hop), and
 * handed back with rw_set_step. Loaded through ctypes (no Python headers needed); built by
 * scripts/bootstrap.sh or on first use; the pure-Python decoder stays as the fallback.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RW_ABI 1
#define NAME_LEN 16
#define MAX_TIMES 16

enum { K_PATH = 1, K_CONSUME = 2, K_DROP = 3 };
enum { PADDING = 29, TIME_EXTEND = 30, TIME_STAMP = 31 };
enum { RW_DONE = 0, RW_NEED_STEP = 1, RW_OUT_FULL = 2, RW_NOMEM = -1 };

/* one event type, as its format file lays it out (offset -1: the event has no such field) */
struct rw_spec {
    int32_t type_id, kind, event;
    int32_t skb_off, skb_size;
    int32_t name_off, name_size, name_loc; /* name_loc 1: __data_loc string, 0: char array */
    int32_t loc_off, loc_size;
    int32_t reason_off, reason_size;
    int32_t proto_off, proto_size;
};

/* one decoded record (64 bytes) */
struct rw_rec {
    uint64_t ts, skb, location;
    int32_t pid, reason; /* reason INT32_MIN: the event has no reason field */
    int32_t event, kind;
    uint32_t protocol, cpu;
    char name[NAME_LEN];
};

/* one result: a drop, or a path that ended in a free (48 bytes) */
struct rw_out {
    uint64_t ts, location;
    int32_t kind, pid, reason;
    uint32_t protocol, node, ntimes, times_at, cpu;
};

int rw_abi(void) { return RW_ABI; }

static uint64_t rd(const uint8_t *p, int size)
{
    uint64_t v = 0;
    memcpy(&v, p, size > 8 ? 8 : size); /* little endian, like the ring buffer */
    return v;
}

static int64_t rd_signed(const uint8_t *p, int size)
{
    switch (size) {
    case 1: return (int8_t)p[0];
    case 2: { int16_t v; memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; memcpy(&v, p, 4); return v; }
    default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
}

static int fits(int32_t off, int32_t size, long len) { return off < 0 || off + size <= len; }

static void decode_one(const uint8_t *r, long len, const struct rw_spec *s, uint64_t ts, int cpu,
                       struct rw_rec *o)
{
    memset(o, 0, sizeof *o);
    o->ts = ts;
    o->cpu = (uint32_t)cpu;
    o->pid = (int32_t)rd_signed(r + 4, 4);
    o->event = s->event;
    o->kind = s->kind;
    o->reason = INT32_MIN;
    if (s->skb_off >= 0)
        o->skb = rd(r + s->skb_off, s->skb_size);
    if (s->loc_off >= 0)
        o->location = rd(r + s->loc_off, s->loc_size);
    if (s->reason_off >= 0)
        o->reason = (int32_t)rd_signed(r + s->reason_off, s->reason_size);
    if (s->proto_off >= 0)
        o->protocol = (uint32_t)rd(r + s->proto_off, s->proto_size);
    if (s->name_off >= 0) {
        const uint8_t *src = r + s->name_off;
        long n = s->name_size;
        if (s->name_loc) {
            uint32_t loc = (uint32_t)rd(src, 4);
            long start = loc & 0xffff;
            n = loc >> 16;
            if (start + n > len)
                n = start < len ? len - start : 0;
            src = r + start;
        }
        if (n > NAME_LEN - 1)
            n = NAME_LEN - 1;
        for (long i = 0; i < n && src[i]; i++)
            o->name[i] = (char)src[i];
    }
}

/*
 * The records of one page (from trace_pipe_raw) of the events in specs; others (and records
 * too short for their fields) are skipped, as in ringbuf.spans(). Returns the count written.
 */
long rw_decode(const uint8_t *page, long len, int long_size, const struct rw_spec *specs, int nspecs,
               int cpu, struct rw_rec *out, long cap)
{
    long hdr = 8 + long_size, n = 0;
    if (len < hdr)
        return 0;
    uint64_t ts = rd(page, 8);
    uint64_t commit = rd(page + 8, long_size) & ((1u << 27) - 1);
    long pos = hdr, end = hdr + (long)commit;
    if (end > len)
        end = len;
    while (pos + 4 <= end && n < cap) {
        uint32_t h = (uint32_t)rd(page + pos, 4);
        uint32_t type_len = h & 0x1f, delta = h >> 5;
        long length;
        pos += 4;
        if (type_len == 0) {
            if (pos + 4 > end)
                break;
            length = (((long)rd(page + pos, 4) - 4) + 3) & ~3L;
            pos += 4;
        } else if (type_len < PADDING) {
            length = type_len * 4;
        } else if (type_len == PADDING) {
            if (pos + 4 > end)
                break;
            length = (long)rd(page + pos, 4);
            if (delta == 0 && length == 0)
                break;
            ts += delta;
            pos += length;
            continue;
        } else {
            uint64_t extend = ((uint64_t)rd(page + pos, 4) << 27) + delta;
            ts = type_len == TIME_STAMP ? (ts & (0xF8ULL << 56)) | extend : ts + extend;
            pos += 4;
            continue;
        }
        ts += delta;
        if (length >= 2 && pos + length <= len) {
            const uint8_t *r = page + pos;
            int type_id = (int)rd(r, 2);
            for (int i = 0; i < nspecs; i++) {
                const struct rw_spec *s = &specs[i];
                if (s->type_id != type_id)
                    continue;
                if (length >= 8 && fits(s->skb_off, s->skb_size, length) && fits(s->name_off, s->name_size, length)
                    && fits(s->loc_off, s->loc_size, length) && fits(s->reason_off, s->reason_size, length)
                    && fits(s->proto_off, s->proto_size, length))
                    decode_one(r, length, s, ts, cpu, &out[n++]);
                break;
            }
        }
        if (length < 0)
            break;
        pos += length;
    }
    return n;
}

/* the distinct pids of the drops among recs: their process context is looked up while the
 * process still exists (a ping has exited by the time the trace is analysed) */
long rw_drop_pids(const struct rw_rec *recs, long n, int32_t *pids, long cap)
{
    long m = 0;
    for (long i = 0; i < n; i++) {
        if (recs[i].kind != K_DROP)
            continue;
        long j = 0;
        while (j < m && pids[j] != recs[i].pid)
            j++;
        if (j == m && m < cap)
            pids[m++] = recs[i].pid;
    }
    return m;
}

/* ---- following packets ---------------------------------------------------------------- */

struct hop { int32_t event; char name[NAME_LEN]; };
struct open { uint64_t skb, seq; uint32_t node, ntimes; uint64_t times[MAX_TIMES]; };

/* open addressing, linear probing; key 0 is "empty" (so keys are stored + 1) */
struct map { uint64_t *keys; uint64_t *vals; uint64_t cap, count; };

static int map_init(struct map *m, uint64_t cap)
{
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->count = 0;
    return m->keys && m->vals ? 0 : -1;
}

static void map_free(struct map *m) { free(m->keys); free(m->vals); }

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}

static uint64_t *map_find(struct map *m, uint64_t key)
{
    uint64_t k = key + 1, i = mix(k) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == k)
            return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

static int map_put(struct map *m, uint64_t key, uint64_t val);

static int map_grow(struct map *m)
{
    struct map bigger;
    if (map_init(&bigger, m->cap * 2))
        return -1;
    for (uint64_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            map_put(&bigger, m->keys[i] - 1, m->vals[i]);
    map_free(m);
    *m = bigger;
    return 0;
}

static int map_put(struct map *m, uint64_t key, uint64_t val)
{
    if ((m->count + 1) * 2 > m->cap && map_grow(m))
        return -1;
    uint64_t k = key + 1, i = mix(k) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->count++;
    m->keys[i] = k;
    m->vals[i] = val;
    return 0;
}

/* backward-shift deletion keeps probe chains whole without tombstones */
static void map_del(struct map *m, uint64_t key)
{
    uint64_t k = key + 1, mask = m->cap - 1, i = mix(k) & mask;
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & mask;
    if (!m->keys[i])
        return;
    m->count--;
    for (uint64_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        uint64_t home = mix(m->keys[j]) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
}

struct rw_state {
    struct hop *hops; uint32_t nhops, hops_cap;
    struct map hop_ids;   /* hash of (event, name) -> hop id + 1 */
    struct map steps;     /* (node << 32 | hop) -> next node | restart << 63 */
    struct map open_at;   /* skb -> slot in opens */
    struct open *opens; uint32_t nopens, opens_cap;
    uint32_t *free_slots; uint32_t nfree;
    uint64_t seq, max_open;
    /* the merge: each CPU's records, in time order, and how far each has been read */
    const struct rw_rec **cpu_recs; long *cpu_len, *cpu_pos; int ncpu;
    /* the step Python is asked for */
    uint32_t need_node, need_hop;
    uint64_t records;
};

struct rw_state *rw_new(uint64_t max_open)
{
    struct rw_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (map_init(&s->hop_ids, 256) || map_init(&s->steps, 1024) || map_init(&s->open_at, 1024)) {
        free(s);
        return NULL;
    }
    s->max_open = max_open;
    return s;
}

void rw_free(struct rw_state *s)
{
    if (!s)
        return;
    map_free(&s->hop_ids); map_free(&s->steps); map_free(&s->open_at);
    free(s->hops); free(s->opens); free(s->free_slots);
    free(s->cpu_recs); free(s->cpu_len); free(s->cpu_pos);
    free(s);
}

static uint64_t hop_hash(int32_t event, const char *name)
{
    uint64_t h = 1469598103934665603ULL ^ (uint32_t)event;
    for (int i = 0; i < NAME_LEN && name[i]; i++)
        h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
    return h & ((1ULL << 62) - 1);
}

/* the id of hop (event, name); ids collide only if hashes do, so they are checked */
static int64_t hop_id(struct rw_state *s, int32_t event, const char *name)
{
    uint64_t h = hop_hash(event, name);
    for (;;) {
        uint64_t *v = map_find(&s->hop_ids, h);
        if (!v)
            break;
        struct hop *hp = &s->hops[*v];
        if (hp->event == event && !strncmp(hp->name, name, NAME_LEN))
            return (int64_t)*v;
        h = (h + 1) & ((1ULL << 62) - 1); /* a different hop with the same hash: next key */
    }
    if (s->nhops == s->hops_cap) {
        uint32_t cap = s->hops_cap ? s->hops_cap * 2 : 64;
        struct hop *more = realloc(s->hops, cap * sizeof *more);
        if (!more)
            return -1;
        s->hops = more;
        s->hops_cap = cap;
    }
    struct hop *hp = &s->hops[s->nhops];
    hp->event = event;
    memcpy(hp->name, name, NAME_LEN);
    if (map_put(&s->hop_ids, h, s->nhops))
        return -1;
    return s->nhops++;
}

int rw_hop(const struct rw_state *s, uint32_t id, int32_t *event, char *name)
{
    if (id >= s->nhops)
        return -1;
    *event = s->hops[id].event;
    memcpy(name, s->hops[id].name, NAME_LEN);
    return 0;
}

void rw_need(const struct rw_state *s, uint32_t *node, uint32_t *hop)
{
    *node = s->need_node;
    *hop = s->need_hop;
}

int rw_set_step(struct rw_state *s, uint32_t node, uint32_t hop, uint32_t next, int restart)
{
    return map_put(&s->steps, ((uint64_t)node << 32) | hop, next | ((uint64_t)(restart != 0) << 63));
}

int rw_begin(struct rw_state *s, int ncpu, const struct rw_rec **recs, const long *lens)
{
    free(s->cpu_recs); free(s->cpu_len); free(s->cpu_pos);
    s->cpu_recs = calloc(ncpu ? ncpu : 1, sizeof *s->cpu_recs);
    s->cpu_len = calloc(ncpu ? ncpu : 1, sizeof *s->cpu_len);
    s->cpu_pos = calloc(ncpu ? ncpu : 1, sizeof *s->cpu_pos);
    if (!s->cpu_recs || !s->cpu_len || !s->cpu_pos)
        return RW_NOMEM;
    for (int i = 0; i < ncpu; i++) {
        s->cpu_recs[i] = recs[i];
        s->cpu_len[i] = lens[i];
    }
    s->ncpu = ncpu;
    return RW_DONE;
}

static struct open *open_pop(struct rw_state *s, uint64_t skb, uint32_t *slot)
{
    uint64_t *v = map_find(&s->open_at, skb);
    if (!v)
        return NULL;
    *slot = (uint32_t)*v;
    map_del(&s->open_at, skb);
    return &s->opens[*slot];
}

static void slot_release(struct rw_state *s, uint32_t slot) { s->free_slots[s->nfree++] = slot; }

/* too many packets in flight (frees we never saw): forget the older half */
static void evict(struct rw_state *s)
{
    uint64_t horizon = s->seq - s->max_open / 2;
    for (uint64_t i = 0; i < s->open_at.cap; i++) {
        if (!s->open_at.keys[i])
            continue;
        struct open *o = &s->opens[s->open_at.vals[i]];
        if (o->seq < horizon) {
            slot_release(s, (uint32_t)s->open_at.vals[i]);
            map_del(&s->open_at, s->open_at.keys[i] - 1);
            i--; /* a later key may have moved into this bucket */
        }
    }
}

static struct open *open_new(struct rw_state *s, uint64_t skb)
{
    uint32_t slot;
    if (s->nfree) {
        slot = s->free_slots[--s->nfree];
    } else {
        if (s->nopens == s->opens_cap) {
            uint32_t cap = s->opens_cap ? s->opens_cap * 2 : 1024;
            struct open *more = realloc(s->opens, cap * sizeof *more);
            uint32_t *slots = realloc(s->free_slots, cap * sizeof *slots);
            if (!more || !slots) {
                if (more) s->opens = more;
                if (slots) s->free_slots = slots;
                return NULL;
            }
            s->opens = more;
            s->free_slots = slots;
            s->opens_cap = cap;
        }
        slot = s->nopens++;
    }
    if (map_put(&s->open_at, skb, slot))
        return NULL;
    struct open *o = &s->opens[slot];
    o->skb = skb;
    o->seq = ++s->seq;
    return o;
}

/* the CPU whose next record is the oldest, or -1 when all are read */
static int next_cpu(const struct rw_state *s)
{
    int best = -1;
    for (int i = 0; i < s->ncpu; i++)
        if (s->cpu_pos[i] < s->cpu_len[i]
            && (best < 0 || s->cpu_recs[i][s->cpu_pos[i]].ts < s->cpu_recs[best][s->cpu_pos[best]].ts))
            best = i;
    return best;
}

/*
 * Follow the records given to rw_begin, oldest first, writing drops and completed paths to
 * out (their hop times, in seconds, to times). Stops with RW_NEED_STEP when a (node, hop) step is not known
 * yet (rw_need says which; rw_set_step answers; call again to go on), RW_OUT_FULL when out or
 * times is full, RW_DONE at the end. *nout / *ntimes are how much of out / times is used.
 */
int rw_follow(struct rw_state *s, struct rw_out *out, long cap, long *nout, double *times, long times_cap,
              long *ntimes)
{
    *nout = 0;
    *ntimes = 0;
    int cpu;
    while ((cpu = next_cpu(s)) >= 0) {
        const struct rw_rec *r = &s->cpu_recs[cpu][s->cpu_pos[cpu]];
        if (r->kind == K_PATH) {
            if (!r->name[0]) {
                s->cpu_pos[cpu]++;
                s->records++;
                continue;
            }
            int64_t hop = hop_id(s, r->event, r->name);
            if (hop < 0)
                return RW_NOMEM;
            uint64_t *at = map_find(&s->open_at, r->skb);
            struct open *o = at ? &s->opens[*at] : NULL;
            uint32_t node = o ? o->node : 0;
            uint64_t *step = map_find(&s->steps, ((uint64_t)node << 32) | (uint64_t)hop);
            if (!step) {
                s->need_node = node;
                s->need_hop = (uint32_t)hop;
                return RW_NEED_STEP;
            }
            if (!o) {
                o = open_new(s, r->skb);
                if (!o)
                    return RW_NOMEM;
                o->ntimes = 0;
                if (s->open_at.count > s->max_open)
                    evict(s), o = &s->opens[*map_find(&s->open_at, r->skb)];
            } else {
                o->seq = ++s->seq; /* moved to the newest, as a re-inserted dict key is */
            }
            if (*step >> 63)
                o->ntimes = 0;
            o->node = (uint32_t)*step;
            if (o->ntimes < MAX_TIMES)
                o->times[o->ntimes++] = r->ts;
        } else if (r->kind == K_CONSUME || r->kind == K_DROP) {
            uint32_t slot = 0;
            struct open *o = open_pop(s, r->skb, &slot);
            uint32_t n = o ? o->ntimes : 0;
            if (r->kind == K_DROP || (o && o->node)) {
                if (*nout >= cap || *ntimes + n > times_cap) {
                    if (o) { /* put it back: this record is read again on the next call */
                        map_put(&s->open_at, r->skb, slot);
                    }
                    return RW_OUT_FULL;
                }
                struct rw_out *w = &out[(*nout)++];
                w->ts = r->ts;
                w->location = r->location;
                w->kind = r->kind;
                w->pid = r->pid;
                w->reason = r->reason;
                w->protocol = r->protocol;
                w->node = o ? o->node : 0;
                w->ntimes = n;
                w->times_at = (uint32_t)*ntimes;
                w->cpu = r->cpu;
                for (uint32_t k = 0; k < n; k++)
                    times[*ntimes + k] = o->times[k] / 1e9; /* seconds, as Records have them */
                *ntimes += n;
            }
            if (o)
                slot_release(s, slot);
        }
        s->cpu_pos[cpu]++;
        s->records++;
    }
    return RW_DONE;
}

uint64_t rw_records(const struct rw_state *s) { return s->records; }
