/* cmd.c — the test suite's WASI command for containers (tests/shim):
 *   cmd hello CODE   prints its args, $GREETING, $PWD, /data.txt and the
 *                    rootfs's /etc/hostname, then exits with CODE
 *   cmd spin         prints "spinning", then loops until stopped
 *   cmd grow MIB     allocates MIB MiB, prints "grew" or "no memory"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cat(const char *path)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: missing\n", path);
        return;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("%s: %s", path, buf);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "hello") == 0) {
        for (int i = 0; i < argc; i++) printf("arg%d=%s\n", i, argv[i]);
        const char *g = getenv("GREETING");
        printf("GREETING=%s\n", g ? g : "(unset)");
        cat("/data.txt");
        const char *pwd = getenv("PWD");
        printf("PWD=%s\n", pwd ? pwd : "(unset)");
        cat("/etc/hostname");
        fprintf(stderr, "to stderr\n");
        return argc >= 3 ? atoi(argv[2]) : 0;
    }
    if (argc >= 2 && strcmp(argv[1], "spin") == 0) {
        printf("spinning\n");
        fflush(stdout);
        volatile unsigned long n = 0;
        for (;;) n++;
    }
    if (argc >= 3 && strcmp(argv[1], "grow") == 0) {
        size_t mib = (size_t)atoi(argv[2]);
        /* volatile: the compiler may not drop an allocation never read */
        char *volatile p = malloc(mib << 20);
        if (p) memset(p, 1, mib << 20);
        printf(p ? "grew %d\n" : "no memory\n", p ? p[(mib << 20) - 1] : 0);
        return p ? 0 : 3;
    }
    fprintf(stderr, "usage: cmd hello CODE | spin | grow MIB\n");
    return 2;
}
