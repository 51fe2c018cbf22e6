# docs/performance.png from run-provider-bench's results.dat:
#   gnuplot -e "data='results.dat'; output='performance.png'" plot.gnuplot
# One panel per remote operation: operations/s against threads for the
# provider, the raw libcurl client and the provider with batching.
if (!exists("data")) data = 'results.dat'
if (!exists("output")) output = 'performance.png'
set terminal pngcairo size 1500,480 font ",10"
set output output
set multiplot layout 1,3 title "smartkey against the local emulator (loopback; clients and emulator on separate cores)"
set logscale x 2
set xtics (1, 4, 16, 64)
set xrange [0.8:80]
set yrange [0:*]
set xlabel "threads"
set ylabel "operations/s"
set key top left
set grid
titles = "RSA-2048-OAEP-decrypt ECDSA-P-256-sign RSA-OAEP-wrap"
do for [i = 0:2] {
    set title word(titles, i + 1)
    plot data index i using 1:2 with linespoints lw 2 pt 7 title "provider", \
         data index i using 1:3 with linespoints lw 2 pt 5 title "raw libcurl", \
         data index i using 1:4 with linespoints lw 2 pt 9 title "provider + batching"
}
unset multiplot
