/*
 * NB-101's module hash (graph_util.hash_module) in C, for whole batches of cells.
 *
 * The algorithm is NB-101's Weisfeiler-Lehman style hash, byte for byte:
 *   h0[v]   = md5(str((out_degree, in_degree, label)))          e.g. "(2, 0, -1)"
 *   repeat V times:
 *   h[v]    = md5(sorted in-neighbour hashes + "|" + sorted out-neighbour hashes + "|" + h[v])
 *   result  = md5(str(sorted(h)))                                e.g. "['ab..', 'cd..']"
 * All hashes are 32-char lowercase hex strings, so sorting them is memcmp on 32 bytes.
 *
 * Nearly all the time goes into MD5, so the messages of one step (every vertex of a chunk of
 * cells) are hashed together, eight at a time in SIMD lanes ("multi-buffer" MD5): messages
 * with the same number of 64-byte blocks share one pass. The Python module
 * core/nb101/hashing.py keeps a plain-Python version of the algorithm as the oracle that
 * tests and benchmarks compare this file against.
 */
#ifdef SWEEPS_PYTHON_MODULE /* built as the wheel's extension (setup.py): importable, loaded by ctypes */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_V 16
#define HEX 32
#define LANES 8
#define CHUNK 64                       /* cells hashed together */
#define MSG_CAP 1152                   /* bytes for the longest padded message (18 blocks) */
#define MAX_BLOCKS (MSG_CAP / 64)

static const uint32_t K[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu,
    0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
    0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu,
    0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
    0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau,
    0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
    0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu,
    0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
    0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu,
    0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u,
    0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
    0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u,
    0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u,
    0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

typedef uint32_t v8u __attribute__((vector_size(4 * LANES)));

#define F1(x, y, z) (z ^ (x & (y ^ z)))
#define F2(x, y, z) F1(z, x, y)
#define F3(x, y, z) (x ^ y ^ z)
#define F4(x, y, z) (y ^ (x | ~z))
#define STEP(f, a, b, c, d, i, g, s) \
    a += f(b, c, d) + K[i] + m[g];   \
    a = ((a << s) | (a >> (32 - s))) + b;

/* MD5 of LANES padded messages of nblk blocks each, in parallel; digests as hex. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void md5_lanes(const uint8_t *const msg[LANES], int nblk, char *const out[LANES]) {
    static const char digits[] = "0123456789abcdef";
    v8u st[4];
    for (int l = 0; l < LANES; l++) {
        st[0][l] = 0x67452301u; st[1][l] = 0xefcdab89u; st[2][l] = 0x98badcfeu; st[3][l] = 0x10325476u;
    }
    for (int blk = 0; blk < nblk; blk++) {
        v8u m[16];
        for (int l = 0; l < LANES; l++) {
            uint32_t words[16];
            memcpy(words, msg[l] + 64 * blk, 64); /* MD5 words are little-endian, as are our targets */
            for (int g = 0; g < 16; g++) m[g][l] = words[g];
        }
        v8u a = st[0], b = st[1], c = st[2], d = st[3];
        for (int i = 0; i < 16; i += 4) {
            STEP(F1, a, b, c, d, i, i, 7)
            STEP(F1, d, a, b, c, i + 1, i + 1, 12)
            STEP(F1, c, d, a, b, i + 2, i + 2, 17)
            STEP(F1, b, c, d, a, i + 3, i + 3, 22)
        }
        for (int i = 16; i < 32; i += 4) {
            STEP(F2, a, b, c, d, i, (5 * i + 1) & 15, 5)
            STEP(F2, d, a, b, c, i + 1, (5 * i + 6) & 15, 9)
            STEP(F2, c, d, a, b, i + 2, (5 * i + 11) & 15, 14)
            STEP(F2, b, c, d, a, i + 3, (5 * i + 16) & 15, 20)
        }
        for (int i = 32; i < 48; i += 4) {
            STEP(F3, a, b, c, d, i, (3 * i + 5) & 15, 4)
            STEP(F3, d, a, b, c, i + 1, (3 * i + 8) & 15, 11)
            STEP(F3, c, d, a, b, i + 2, (3 * i + 11) & 15, 16)
            STEP(F3, b, c, d, a, i + 3, (3 * i + 14) & 15, 23)
        }
        for (int i = 48; i < 64; i += 4) {
            STEP(F4, a, b, c, d, i, (7 * i) & 15, 6)
            STEP(F4, d, a, b, c, i + 1, (7 * i + 7) & 15, 10)
            STEP(F4, c, d, a, b, i + 2, (7 * i + 14) & 15, 15)
            STEP(F4, b, c, d, a, i + 3, (7 * i + 21) & 15, 21)
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d;
    }
    for (int l = 0; l < LANES; l++)
        for (int w = 0; w < 4; w++)
            for (int k = 0; k < 4; k++) {
                uint8_t byte = (uint8_t)(st[w][l] >> (8 * k));
                out[l][8 * w + 2 * k] = digits[byte >> 4];
                out[l][8 * w + 2 * k + 1] = digits[byte & 15];
            }
}

/* A message waiting to be hashed: its bytes (room for padding), length and destination. */
typedef struct {
    uint8_t *data;
    size_t len;
    char *out;
} Job;

/* MD5 padding in place: 0x80, zeros, 64-bit bit length. Returns the number of blocks. */
static int pad(uint8_t *data, size_t len) {
    size_t total = ((len + 8) / 64 + 1) * 64;
    data[len] = 0x80;
    memset(data + len + 1, 0, total - len - 1 - 8);
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) data[total - 8 + i] = (uint8_t)(bits >> (8 * i));
    return (int)(total / 64);
}

/* Hash every job: group them by block count and run full groups of LANES through md5_lanes. */
static void run_jobs(Job *jobs, int n) {
    char sink[LANES][HEX];
    int count[MAX_BLOCKS + 1] = {0};
    int *order = malloc(sizeof(int) * (size_t)n), *nblk = malloc(sizeof(int) * (size_t)n);
    int start[MAX_BLOCKS + 2];
    for (int i = 0; i < n; i++) {
        nblk[i] = pad(jobs[i].data, jobs[i].len);
        count[nblk[i]]++;
    }
    start[0] = 0;
    for (int b = 0; b <= MAX_BLOCKS; b++) start[b + 1] = start[b] + count[b];
    for (int i = 0; i < n; i++) order[start[nblk[i]]++] = i;
    for (int i = 0; i < n;) {
        int b = nblk[order[i]], k = 0;
        const uint8_t *msg[LANES] = {0};
        char *out[LANES] = {0};
        for (; k < LANES && i < n && nblk[order[i]] == b; k++, i++) {
            msg[k] = jobs[order[i]].data;
            out[k] = jobs[order[i]].out;
        }
        for (int pad_lane = k; pad_lane < LANES; pad_lane++) { /* idle lanes redo lane 0 */
            msg[pad_lane] = msg[0];
            out[pad_lane] = sink[pad_lane];
        }
        md5_lanes(msg, b, out);
    }
    free(order);
    free(nblk);
}

/* Sort an index list by the 32-char hashes it points to (insertion sort: at most MAX_V). */
static void sort_by_hash(int *idx, int n, char (*hashes)[HEX]) {
    for (int i = 1; i < n; i++) {
        int cur = idx[i], j = i - 1;
        while (j >= 0 && memcmp(hashes[idx[j]], hashes[cur], HEX) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = cur;
    }
}

/* Append the hashes of idx[0:n], sorted, to buf at *len. */
static void append_sorted(uint8_t *buf, size_t *len, const int *idx, int n, char (*h)[HEX]) {
    int order[2 * MAX_V];
    memcpy(order, idx, sizeof(int) * (size_t)n);
    sort_by_hash(order, n, h);
    for (int k = 0; k < n; k++, *len += HEX) memcpy(buf + *len, h[order[k]], HEX);
}

/* Per-cell scratch: neighbour lists and the current / next vertex hashes. */
typedef struct {
    int n_in[MAX_V], n_out[MAX_V], in_nb[MAX_V][MAX_V], out_nb[MAX_V][MAX_V];
    char h[MAX_V][HEX], nh[MAX_V][HEX];
} Cell;

/* Hash `count` cells of nv vertices (count <= CHUNK) with shared scratch. */
static void hash_chunk(int count, int nv, const uint8_t *adj, const int8_t *labels, char *out,
                       Cell *cells, Job *jobs, uint8_t *buffers) {
    int n_jobs = 0;
    for (int c = 0; c < count; c++) {
        Cell *cell = &cells[c];
        const uint8_t *a = adj + (size_t)c * nv * nv;
        for (int v = 0; v < nv; v++) cell->n_in[v] = cell->n_out[v] = 0;
        for (int src = 0; src < nv; src++)
            for (int dst = 0; dst < nv; dst++)
                if (a[src * nv + dst]) {
                    cell->out_nb[src][cell->n_out[src]++] = dst;
                    cell->in_nb[dst][cell->n_in[dst]++] = src;
                }
        for (int v = 0; v < nv; v++, n_jobs++) {
            Job *job = &jobs[n_jobs];
            job->data = buffers + (size_t)n_jobs * MSG_CAP;
            job->len = (size_t)snprintf((char *)job->data, MSG_CAP, "(%d, %d, %d)", cell->n_out[v],
                                        cell->n_in[v], labels[(size_t)c * nv + v]);
            job->out = cell->h[v];
        }
    }
    run_jobs(jobs, n_jobs);
    for (int it = 0; it < nv; it++) {
        n_jobs = 0;
        for (int c = 0; c < count; c++) {
            Cell *cell = &cells[c];
            for (int v = 0; v < nv; v++, n_jobs++) {
                Job *job = &jobs[n_jobs];
                size_t len = 0;
                job->data = buffers + (size_t)n_jobs * MSG_CAP;
                append_sorted(job->data, &len, cell->in_nb[v], cell->n_in[v], cell->h);
                job->data[len++] = '|';
                append_sorted(job->data, &len, cell->out_nb[v], cell->n_out[v], cell->h);
                job->data[len++] = '|';
                memcpy(job->data + len, cell->h[v], HEX);
                job->len = len + HEX;
                job->out = cell->nh[v];
            }
        }
        run_jobs(jobs, n_jobs);
        for (int c = 0; c < count; c++) memcpy(cells[c].h, cells[c].nh, sizeof(char) * HEX * (size_t)nv);
    }
    for (int c = 0; c < count; c++) { /* str(sorted(hashes)) in Python: "['h0', 'h1']" */
        Job *job = &jobs[c];
        int order[MAX_V];
        size_t len = 0;
        uint8_t *buf = job->data = buffers + (size_t)c * MSG_CAP;
        for (int v = 0; v < nv; v++) order[v] = v;
        sort_by_hash(order, nv, cells[c].h);
        buf[len++] = '[';
        for (int k = 0; k < nv; k++) {
            if (k) { buf[len++] = ','; buf[len++] = ' '; }
            buf[len++] = '\'';
            memcpy(buf + len, cells[c].h[order[k]], HEX);
            len += HEX;
            buf[len++] = '\'';
        }
        buf[len++] = ']';
        job->len = len;
        job->out = out + (size_t)c * HEX;
    }
    run_jobs(jobs, count);
}

/*
 * Hash n cells of nv vertices each. adj: n*nv*nv bytes (nonzero = edge), labels: n*nv int8,
 * out: n*32 bytes of hex. Returns 0; -1 when nv is outside 1..MAX_V; -2 when out of memory.
 */
int nb101_hash_batch(int64_t n, int nv, const uint8_t *adj, const int8_t *labels, char *out) {
    if (nv < 1 || nv > MAX_V) return -1;
    int64_t chunk = n < CHUNK ? (n > 0 ? n : 1) : CHUNK; /* small batches allocate little */
    Cell *cells = malloc(sizeof(Cell) * (size_t)chunk);
    Job *jobs = malloc(sizeof(Job) * (size_t)(chunk * nv));
    uint8_t *buffers = malloc((size_t)MSG_CAP * (size_t)(chunk * nv));
    if (!cells || !jobs || !buffers) {
        free(cells); free(jobs); free(buffers);
        return -2;
    }
    for (int64_t i = 0; i < n; i += chunk) {
        int count = (int)((n - i) < chunk ? (n - i) : chunk);
        hash_chunk(count, nv, adj + i * nv * nv, labels + i * nv, out + i * HEX, cells, jobs, buffers);
    }
    free(cells); free(jobs); free(buffers);
    return 0;
}

#ifdef SWEEPS_PYTHON_MODULE
/* An empty module: it only gives the wheel a place (core/nb101/_wlhash*.so) for this library,
 * whose C entry points core/nb101/native.py calls through ctypes. */
static struct PyModuleDef wlhash_module = {
    PyModuleDef_HEAD_INIT, "_wlhash", "NB-101 batch hashing, called through ctypes", -1, NULL,
};

PyMODINIT_FUNC PyInit__wlhash(void) { return PyModule_Create(&wlhash_module); }
#endif
