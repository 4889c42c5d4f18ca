/*
 * envdump.c — answers with its whole environment, one VAR=value per line,
 * for tests/host/secrets_tests.sh (values from Secrets and ConfigMaps must
 * arrive as env values).
 */
#include <stdio.h>

extern char **environ;

int main(void)
{
    printf("Content-Type: text/plain\n\n");
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    return 0;
}
