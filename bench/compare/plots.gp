# plots.gp — the plots of `make bench` (bench/compare/report.mjs writes the
# data and runs this as: gnuplot -e "dir='DIR'; names='SYS...'" plots.gp).
#   DIR/rps.png            requests/s per system and function (log scale)
#   DIR/coldstart-cdf.png  cold-start latency CDF per system (log ms)
#   DIR/memory.png         memory per live instance (log KiB)
set terminal pngcairo size 900,520 font ",10" noenhanced
set grid ytics
set key outside right top

set output dir.'/rps.png'
set title 'Requests/s (wrk, same threads and connections for all; median of runs)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel 'requests/s (log scale)'
set yrange [1:1e6]
set key inside top right
set xtics nomirror
plot dir.'/rps.dat' using 2:xtic(1) title 'nginx static 200', \
     '' using 3 title 'wasmfn', \
     '' using 4 title 'workerd fresh instance', \
     '' using 5 title 'workerd reused instance', \
     '' using 6 title 'Node.js WASI (process/request)', \
     '' using 7 title 'native CGI (fork/exec)'

reset
set terminal pngcairo size 900,520 font ",10" noenhanced
set output dir.'/coldstart-cdf.png'
set title 'Cold start: first request to a function with no instance (CDF over all runs)'
set grid
set key outside right top
set logscale x
set xlabel 'latency, ms (log scale)'
set ylabel 'fraction of requests'
set yrange [0:1.02]
plot for [i=1:words(names)] dir.'/cold.dat' index (i-1) using 1:2 with steps lw 2 title word(names, i)

reset
set terminal pngcairo size 900,520 font ",10" noenhanced
set output dir.'/memory.png'
set title 'Memory per live instance of hello (median of runs)'
set style data histograms
set style fill solid 0.85 border -1
set boxwidth 0.7
set logscale y
set grid ytics
set ylabel 'KiB per instance (log scale)'
set key off
plot dir.'/memory.dat' using 2:xtic(1) lc rgb '#4477aa'
