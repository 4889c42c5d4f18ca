/* float.c — compute kernel: floating point that must round identically
 * everywhere (only +, -, *, /, sqrt, fma and conversions, which IEEE 754
 * fixes exactly; no libm transcendental functions, whose last bits differ
 * between libcs): an n-body simulation, a Mandelbrot count, a float32
 * series, and conversions at the edges. Printed with %a and %.17g. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NB 5
static double px[NB] = {0, 4.84143144246472090e+00, 8.34336671824457987e+00,
                        1.28943695621391310e+01, 1.53796971148509165e+01};
static double py[NB] = {0, -1.16032004402742839e+00, 4.12479856412430479e+00,
                        -1.51111514016986312e+01, -2.59193146099879641e+01};
static double pz[NB] = {0, -1.03622044471123109e-01, -4.03523417114321381e-01,
                        -2.23307578892655734e-01, 1.79258772950371181e-01};
static double vx[NB] = {0, 1.66007664274403694e-03, -2.76742510726862411e-03,
                        2.96460137564761618e-03, 2.68067772490389322e-03};
static double vy[NB] = {0, 7.69901118419740425e-03, 4.99852801234917238e-03,
                        2.37847173959480950e-03, 1.62824170038242295e-03};
static double vz[NB] = {0, -6.90460016972063023e-05, 2.30417297573763929e-05,
                        -2.96589568540237556e-05, -9.51592254519715870e-05};
static double mass[NB] = {39.47841760435743, 0.03769367487038949, 0.011286326131968767,
                          0.0017237240570597112, 0.0020336868699246304};

static double energy(void)
{
    double e = 0;
    for (int i = 0; i < NB; i++) {
        e += 0.5 * mass[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
        for (int j = i + 1; j < NB; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            e -= mass[i] * mass[j] / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(double dt)
{
    for (int i = 0; i < NB; i++)
        for (int j = i + 1; j < NB; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * sqrt(d2));
            vx[i] -= dx * mass[j] * mag, vy[i] -= dy * mass[j] * mag, vz[i] -= dz * mass[j] * mag;
            vx[j] += dx * mass[i] * mag, vy[j] += dy * mass[i] * mag, vz[j] += dz * mass[i] * mag;
        }
    for (int i = 0; i < NB; i++) px[i] += dt * vx[i], py[i] += dt * vy[i], pz[i] += dt * vz[i];
}

int main(void)
{
    printf("nbody e0 = %.17g\n", energy());
    for (int i = 0; i < 200000; i++) advance(0.01);
    printf("nbody e1 = %.17g (%a)\n", energy(), energy());

    int inside = 0;
    for (int y = 0; y < 300; y++)
        for (int x = 0; x < 400; x++) {
            double cr = -2.0 + x * (3.0 / 400), ci = -1.2 + y * (2.4 / 300), zr = 0, zi = 0;
            int k = 0;
            while (k < 200 && zr * zr + zi * zi <= 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                k++;
            }
            inside += k == 200;
        }
    printf("mandelbrot inside = %d\n", inside);

    float s = 0;
    for (int i = 1; i <= 1000000; i++) s += 1.0f / ((float)i * (float)i);
    printf("basel float32 = %.9g (%a)\n", s, (double)s);
    double acc = 0;
    for (int i = 0; i < 1000; i++) acc = fma(acc, 1.0000001, 1.0 / (i + 1));
    printf("fma chain = %.17g\n", acc);

    double vals[] = {0.1, -0.0, 1e308, 4.9e-324, 2.5, 3.5, -2.5, 9007199254740993.0, 1.0 / 3};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        double v = vals[i];
        float f = (float)v;
        printf("v=%.17g f=%.9g rint=%.1f trunc=%lld sqrt=%.17g\n", v, (double)f, rint(v),
               (long long)(fabs(v) < 9e18 ? (long long)v : 0), sqrt(fabs(v)));
    }
    uint64_t bits;
    double nan = sqrt(-1.0);
    memcpy(&bits, &nan, 8);
    printf("isnan(sqrt(-1)) = %d\n", isnan(nan));
    return 0;
}
