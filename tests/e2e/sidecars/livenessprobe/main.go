// Stand-in for the CSI livenessprobe sidecar (see ../README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	csiAddress   = flag.String("csi-address", "/csi/csi.sock", "CSI endpoint of the driver")
	healthPort   = flag.Int("health-port", 9808, "TCP port of /healthz")
	probeTimeout = flag.Duration("probe-timeout", time.Second, "timeout of one CSI Probe")
	_            = flag.Int("v", 0, "log level (accepted for compatibility)")
)

func main() {
	flag.Parse()
	conn, err := grpc.NewClient("unix://"+*csiAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), *probeTimeout)
		defer cancel()
		resp, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "probe failed: %v\n", err)
			return
		}
		if rd := resp.GetReady(); rd != nil && !rd.GetValue() {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintln(w, "driver not ready")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	log.Printf("serving /healthz on :%d for %s", *healthPort, *csiAddress)
	log.Fatal(http.ListenAndServe(fmt.Sprintf(":%d", *healthPort), nil))
}
