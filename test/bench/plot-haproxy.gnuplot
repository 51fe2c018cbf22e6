# docs/performance-haproxy.png from run-haproxy-bench's haproxy-plot.dat:
#   gnuplot -e "data='haproxy-plot.dat'; output='performance-haproxy.png'; \
#               keys='ec rsa'; latencies='0 5 20 50'" plot-haproxy.gnuplot
# One panel per key and added latency (one data block each, keys outer,
# latencies inner): HAProxy's handshakes/s (one thread) against concurrent
# clients, ssl-mode-async off (sync) and on (async), beside the limit
# concurrency / RTT and the same HAProxy with a local key.
# Block columns: clients sync_hs async_hs c_over_rtt local_hs
if (!exists("data")) data = 'haproxy-plot.dat'
if (!exists("output")) output = 'performance-haproxy.png'
if (!exists("keys")) keys = 'ec rsa'
if (!exists("latencies")) latencies = '0 5 20 50'
nk = words(keys)
nl = words(latencies)
keyname(k) = (k eq "ec") ? "EC P-256" : (k eq "rsa") ? "RSA-2048" : k
set terminal pngcairo size (380 * nl), (340 * nk) font ",9"
set output output
set multiplot layout nk, nl title "HAProxy, one thread, SmartKey key (key-reference file): TLS handshakes/s against concurrent clients"
set logscale x 2
set logscale y 10
set xtics (1, 4, 16, 64)
set xrange [0.8:80]
set yrange [5:5000]
set xlabel "concurrent clients"
set ylabel "handshakes/s"
set key top left font ",8"
set grid
do for [k = 1:nk] {
    do for [l = 1:nl] {
        set title sprintf("%s, %s ms added", keyname(word(keys, k)), word(latencies, l))
        i = (k - 1) * nl + (l - 1)
        plot data index i using 1:3 with linespoints lw 2 pt 7 title "async (ssl-mode-async)", \
             data index i using 1:2 with linespoints lw 2 pt 5 title "sync", \
             data index i using 1:5 with lines dt 2 lw 1.5 lc rgb "gray40" title "local key", \
             data index i using 1:($4 > 0 ? $4 : 1/0) with lines dt 3 lw 1.5 lc rgb "black" title "concurrency / RTT"
    }
}
unset multiplot
