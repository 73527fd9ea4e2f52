// Stand-in for csi-node-driver-registrar (see ../README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

var (
	csiAddress  = flag.String("csi-address", "/csi/csi.sock", "CSI endpoint of the driver")
	kubeletPath = flag.String("kubelet-registration-path", "", "the driver socket as kubelet sees it")
	pluginDir   = flag.String("plugin-registration-path", "/registration", "kubelet's plugins_registry, mounted")
	mode        = flag.String("mode", "registration", "registration | kubelet-registration-probe")
	_           = flag.Int("v", 0, "log level (accepted for compatibility)")
)

type server struct {
	registerapi.UnimplementedRegistrationServer
	name string
}

func (s *server) GetInfo(ctx context.Context, _ *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	log.Printf("kubelet asked GetInfo")
	return &registerapi.PluginInfo{Type: registerapi.CSIPlugin, Name: s.name,
		Endpoint: *kubeletPath, SupportedVersions: []string{"1.0.0"}}, nil
}

func (s *server) NotifyRegistrationStatus(ctx context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if !st.PluginRegistered {
		log.Printf("registration failed: %s", st.Error)
		os.Exit(1)
	}
	log.Printf("registered with kubelet")
	return &registerapi.RegistrationStatusResponse{}, nil
}

func driverName() (string, error) {
	conn, err := grpc.NewClient("unix://"+*csiAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
		cancel()
		if err == nil {
			return resp.GetName(), nil
		}
		log.Printf("waiting for the driver at %s: %v", *csiAddress, err)
		time.Sleep(2 * time.Second)
	}
}

func main() {
	flag.Parse()
	if *kubeletPath == "" {
		log.Fatal("--kubelet-registration-path is required")
	}
	if *mode == "kubelet-registration-probe" {
		// Healthy while the driver socket kubelet was given exists (the real
		// registrar checks the same: kubelet's path, seen through the pod's mount).
		if _, err := os.Stat(*kubeletPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	name, err := driverName()
	if err != nil {
		log.Fatal(err)
	}
	sock := filepath.Join(*pluginDir, name+"-reg.sock")
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	registerapi.RegisterRegistrationServer(g, &server{name: name})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; _ = os.Remove(sock); os.Exit(0) }()
	log.Printf("serving registration of %s at %s (driver socket for kubelet: %s)", name, sock, *kubeletPath)
	log.Fatal(g.Serve(lis))
}
