/* trees.c — compute kernel, allocation-heavy: builds and checks many binary
 * trees with malloc/free (the "binary-trees" benchmark shape), plus a
 * hash map with deletes, so the allocator is exercised hard. Output must be
 * byte-identical natively and in Wasm. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *l, *r;
} node_t;

static node_t *make(int depth)
{
    node_t *n = malloc(sizeof *n);
    if (depth > 0) {
        n->l = make(depth - 1);
        n->r = make(depth - 1);
    } else {
        n->l = n->r = NULL;
    }
    return n;
}

static int check(const node_t *n) { return 1 + (n->l ? check(n->l) + check(n->r) : 0); }

static void release(node_t *n)
{
    if (n->l) {
        release(n->l);
        release(n->r);
    }
    free(n);
}

typedef struct entry {
    char *key;
    int value;
    struct entry *next;
} entry_t;

int main(void)
{
    int max_depth = 16;
    node_t *stretch = make(max_depth + 1);
    printf("stretch tree of depth %d\t check: %d\n", max_depth + 1, check(stretch));
    release(stretch);
    node_t *long_lived = make(max_depth);
    for (int d = 4; d <= max_depth; d += 2) {
        int iters = 1 << (max_depth - d + 4), total = 0;
        for (int i = 0; i < iters; i++) {
            node_t *t = make(d);
            total += check(t);
            release(t);
        }
        printf("%d\t trees of depth %d\t check: %d\n", iters, d, total);
    }
    printf("long lived tree of depth %d\t check: %d\n", max_depth, check(long_lived));
    release(long_lived);

    enum { BUCKETS = 4096 };
    entry_t **map = calloc(BUCKETS, sizeof *map);
    uint32_t x = 7;
    int live = 0;
    for (int i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        char key[16];
        snprintf(key, sizeof key, "k%u", x % 50000);
        uint32_t h = 5381;
        for (char *c = key; *c; c++) h = h * 33 + (uint8_t)*c;
        entry_t **pp = &map[h % BUCKETS];
        while (*pp && strcmp((*pp)->key, key)) pp = &(*pp)->next;
        if (*pp && (x >> 28) < 5) {
            entry_t *e = *pp;
            *pp = e->next;
            free(e->key);
            free(e);
            live--;
        } else if (*pp) {
            (*pp)->value += i;
        } else {
            entry_t *e = malloc(sizeof *e);
            e->key = strdup(key);
            e->value = i;
            e->next = NULL;
            *pp = e;
            live++;
        }
    }
    long long sum = 0;
    for (int b = 0; b < BUCKETS; b++)
        for (entry_t *e = map[b]; e; e = e->next) sum += e->value;
    printf("map live=%d sum=%lld\n", live, sum);
    return 0;
}
