/* lib/heap.c - a binary min-heap of call deadlines (loop thread only). One libuv timer
 * per synchronizer fires for the earliest; records know their index, so removal on
 * completion is O(log n). */
#include "internal.h"

static bool earlier(const synchro_call_t *a, const synchro_call_t *b) {
  return a->deadline_ns < b->deadline_ns;
}

static void place(synchro__heap_t *h, uint32_t i, synchro_call_t *rec) {
  h->items[i] = rec;
  rec->heap_idx = i;
}

static void sift_up(synchro__heap_t *h, uint32_t i) {
  synchro_call_t *rec = h->items[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!earlier(rec, h->items[parent]))
      break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, rec);
}

static void sift_down(synchro__heap_t *h, uint32_t i) {
  synchro_call_t *rec = h->items[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= h->len)
      break;
    if (child + 1 < h->len && earlier(h->items[child + 1], h->items[child]))
      child++;
    if (!earlier(h->items[child], rec))
      break;
    place(h, i, h->items[child]);
    i = child;
  }
  place(h, i, rec);
}

int synchro__heap_push(synchro__heap_t *h, synchro_call_t *rec) {
  if (h->len == h->cap) {
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    synchro_call_t **items = synchro__realloc(h->items, cap * sizeof(*items));
    if (items == NULL)
      return SYNCHRO_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  place(h, h->len++, rec);
  sift_up(h, h->len - 1);
  return 0;
}

void synchro__heap_remove(synchro__heap_t *h, synchro_call_t *rec) {
  uint32_t i = rec->heap_idx;
  if (i >= h->len || h->items[i] != rec)
    return;
  h->len--;
  if (i == h->len)
    return;
  place(h, i, h->items[h->len]);
  sift_down(h, i);
  sift_up(h, i);
}

synchro_call_t *synchro__heap_top(const synchro__heap_t *h) { return h->len ? h->items[0] : NULL; }

void synchro__heap_free(synchro__heap_t *h) {
  synchro__free(h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}
