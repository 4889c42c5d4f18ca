/* gen_input.c — writes the input that bench/programs/run.sh compresses with
 * bzip2: MIB mebibytes of text that looks like a server log (a timestamp,
 * a level, a component, a message of words and numbers), deterministic for
 * a given size. Words are drawn with a skewed distribution from a made-up
 * vocabulary, so the text compresses about as well as real logs do (4-5x
 * with bzip2), neither as trivially as repeated text nor not at all like
 * random bytes.
 *
 *   gen_input MIB > input.txt
 *
 * Built natively by run.sh; not one of the programs being measured. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: fast, and the same sequence on every platform */
static uint32_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* 0..n-1, smaller values more likely (the minimum of two draws) */
static uint32_t rng_skewed(uint32_t n) {
    uint32_t a = rng_next() % n, b = rng_next() % n;
    return a < b ? a : b;
}

#define VOCAB_WORDS 2048

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 20;
    if (mib <= 0 || mib > 4096) {
        fprintf(stderr, "usage: gen_input MIB (1..4096)\n");
        return 2;
    }
    static const char *syllables[] = {"ka", "ro", "mi", "ten", "su", "lo", "vex", "da", "pri", "no",
                                      "ul", "cha", "ber", "it", "gon", "sa", "fe", "tor", "qui", "an"};
    static const char *levels[] = {"INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"};
    static const char *components[] = {"http", "db", "cache", "auth", "queue", "scheduler", "storage",
                                       "billing"};
    static char vocab[VOCAB_WORDS][24];
    for (int i = 0; i < VOCAB_WORDS; i++) {
        int n = 1 + (int)(rng_next() % 4);
        vocab[i][0] = '\0';
        for (int s = 0; s < n; s++) strcat(vocab[i], syllables[rng_next() % 20]);
    }

    long long target = mib * 1024LL * 1024LL, written = 0;
    unsigned long long t = 1700000000000ull; /* milliseconds */
    char line[512];
    while (written < target) {
        t += rng_next() % 250;
        int len = snprintf(line, sizeof line, "%llu.%03llu %-5s [%s] ", t / 1000, t % 1000,
                           levels[rng_next() % 7], components[rng_skewed(8)]);
        int words = 4 + (int)(rng_next() % 12);
        for (int w = 0; w < words && len < 400; w++) {
            uint32_t kind = rng_next() % 16;
            if (kind == 0)
                len += snprintf(line + len, sizeof line - len, "%u ", rng_next() % 100000);
            else if (kind == 1)
                len += snprintf(line + len, sizeof line - len, "id=%08x ", rng_next());
            else
                len += snprintf(line + len, sizeof line - len, "%s ", vocab[rng_skewed(VOCAB_WORDS)]);
        }
        line[len - 1] = '\n';
        if (written + len > target) len = (int)(target - written);
        fwrite(line, 1, (size_t)len, stdout);
        written += len;
    }
    return ferror(stdout) ? 1 : 0;
}
