/*
 * noisy.c — a test function whose stderr tries to fool the operator's
 * terminal: a carriage return followed by a forged log line, ANSI colour
 * and OSC (window title) escape sequences, a BEL, a C1 control encoded in
 * UTF-8 (U+009B, CSI), a byte that is not UTF-8, and a harmless 'é' and tab.
 * Answers 200 "noisy". The serving tests check that `wasmfn logs` and the
 * logs API print all of it escaped, one log line per line written.
 */
#include <stdio.h>

int main(void)
{
    fputs("before\rFAKE 2099-01-01T00:00:00.000Z noisy-00001: forged\n", stderr);
    fputs("\x1b[31mred\x1b[0m \x1b]0;pwned\x07 c1:\xc2\x9b bad:\xff ok:\xc3\xa9\tend\n", stderr);
    fflush(stderr);
    printf("Content-Type: text/plain\n\nnoisy\n");
    return 0;
}
