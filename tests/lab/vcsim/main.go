// A vCenter for the lab: govmomi's simulator (vcsim) as a library, built
// offline from Debian's golang-github-vmware-govmomi-dev (which ships the
// library but no vcsim binary). Prints one line, `URL CERT_SHA256 CERT_FILE`,
// then serves until its standard input closes (the test that started it is
// gone) or it is signalled.
//
//	vcsim-lab [-listen 127.0.N.M:0] [-vms N] [-delay Method=ms,...]
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	vms := flag.Int("vms", 2, "VMs per host (vcsim's Machine)")
	delay := flag.String("delay", "", "method delays, Method=ms,... (e.g. CreateSnapshot_Task=3000)")
	flag.Parse()

	model := simulator.VPX()
	model.Machine = *vms
	model.ClusterHost = 1
	if *delay != "" {
		model.DelayConfig.MethodDelay = map[string]int{}
		for _, pair := range strings.Split(*delay, ",") {
			name, ms, ok := strings.Cut(pair, "=")
			n, err := strconv.Atoi(ms)
			if !ok || err != nil {
				fmt.Fprintf(os.Stderr, "vcsim-lab: -delay %q: want Method=ms\n", pair)
				os.Exit(2)
			}
			model.DelayConfig.MethodDelay[name] = n
		}
	}
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "vcsim-lab: %v\n", err)
		os.Exit(1)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: *listen}
	// A certificate of our own (ECDSA P-256, for the listening address):
	// Go's built-in test certificate is RSA 1024, which rustls refuses.
	cert, err := certificate(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vcsim-lab: %v\n", err)
		os.Exit(1)
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	server := model.Service.NewServer()
	defer server.Close()
	certFile, err := server.CertificateFile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vcsim-lab: %v\n", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(server.Certificate().Raw)
	fmt.Printf("%s %x %s\n", server.URL.String(), sum, certFile)

	// Standard input: `snapshots VM` lines, each answered with
	// `snapshots NAME,NAME,...` from the simulator's own object model (the
	// tests' ground truth); its end stops the server.
	done := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			line := lines.Text()
			if !strings.HasPrefix(line, "snapshots ") {
				continue
			}
			name := strings.TrimPrefix(line, "snapshots ")
			fmt.Printf("snapshots %s\n", strings.Join(snapshotNames(name), ","))
		}
		close(done)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-signals:
	}
}

func certificate(listen string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	host, _, _ := net.SplitHostPort(listen)
	template := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "vcsim-lab"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		template.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// The names in the snapshot tree of the VM called name.
func snapshotNames(name string) []string {
	names := []string{}
	var walk func(trees []types.VirtualMachineSnapshotTree)
	walk = func(trees []types.VirtualMachineSnapshotTree) {
		for _, t := range trees {
			names = append(names, t.Name)
			walk(t.ChildSnapshotList)
		}
	}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok || vm.Name != name {
			continue
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Snapshot != nil {
				walk(vm.Snapshot.RootSnapshotList)
			}
		})
	}
	return names
}
