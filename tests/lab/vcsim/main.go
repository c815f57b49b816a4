// A vCenter for the lab: govmomi's simulator (vcsim) as a library, built
// offline from Debian's golang-github-vmware-govmomi-dev (which ships the
// library but no vcsim binary). Prints one line, `URL CERT_SHA256 CERT_FILE`,
// then serves until its standard input closes (the test that started it is
// gone) or it is signalled.
//
//	vcsim-lab [-listen 127.0.N.M:0] [-vms N] [-delay Method=ms,...] [-session-idle 2s]
//
// -session-idle expires a session idle that long (vCenter's own idle
// timeout, shortened): the client's next call is NotAuthenticated.
package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"regexp"
	"sync/atomic"
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
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Armed by `fail CreateSnapshot_Task`: the next such call gets a task that
// ends in error (vCenter's answer to, say, a full datastore).
var failNextSnapshot atomic.Bool

// Every SOAP request served (`requests` on standard input): the
// benchmarks' requests per snapshot.
var served atomic.Int64

var thisVM = regexp.MustCompile(`<_this[^>]*type="VirtualMachine"[^>]*>([^<]+)</_this>`)

// failing answers a CreateSnapshot_Task with a task of vcsim's own that
// ends in error, once armed; every other call goes to the simulator.
func failing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		m := thisVM.FindSubmatch(body)
		if m == nil || !bytes.Contains(body, []byte("<CreateSnapshot_Task")) || !failNextSnapshot.CompareAndSwap(true, false) {
			next.ServeHTTP(w, r)
			return
		}
		ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: string(m[1])}
		vm, ok := simulator.Map.Get(ref).(mo.Reference)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		task := simulator.CreateTask(vm, "createSnapshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return nil, &types.NoDiskSpace{Datastore: "LocalDS_0"}
		})
		moref := task.Run()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><CreateSnapshot_TaskResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></CreateSnapshot_TaskResponse></soapenv:Body></soapenv:Envelope>`, moref.Value)
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	vms := flag.Int("vms", 2, "VMs per host (vcsim's Machine)")
	delay := flag.String("delay", "", "method delays, Method=ms,... (e.g. CreateSnapshot_Task=3000)")
	idle := flag.Duration("session-idle", 0, "expire sessions idle this long (0: never)")
	flag.Parse()
	simulator.SessionIdleTimeout = *idle

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
	// A login of its own (not vcsim's DefaultLogin, which takes any
	// password): user / pass, and nothing else.
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword("user", "pass")}
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
	server.Config.Handler = failing(server.Config.Handler)
	certFile, err := server.CertificateFile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vcsim-lab: %v\n", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(server.Certificate().Raw)
	fmt.Printf("%s %x %s\n", server.URL.String(), sum, certFile)

	// Standard input, a command a line: `snapshots VM` is answered with
	// `snapshots NAME,NAME,...` from the simulator's own object model (the
	// tests' ground truth), `description VM` with `description TEXT|TEXT…`;
	// `fail CreateSnapshot_Task`, `consolidate VM`
	// (its runtime.consolidationNeeded set) and `age VM HOURS` (its
	// snapshots made that much earlier) with `ok`; `requests` with
	// `requests N`, the SOAP requests served so far. Its end stops the server.
	done := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			words := strings.Fields(lines.Text())
			switch {
			case len(words) == 2 && words[0] == "snapshots":
				fmt.Printf("snapshots %s\n", strings.Join(snapshotNames(words[1]), ","))
			case len(words) == 2 && words[0] == "description":
				fmt.Printf("description %s\n", strings.Join(snapshotDescriptions(words[1]), "|"))
			case len(words) == 1 && words[0] == "requests":
				fmt.Printf("requests %d\n", served.Load())
			case len(words) == 2 && words[0] == "fail" && words[1] == "CreateSnapshot_Task":
				failNextSnapshot.Store(true)
				fmt.Println("ok")
			case len(words) == 2 && words[0] == "consolidate":
				withVM(words[1], func(vm *simulator.VirtualMachine) {
					vm.Runtime.ConsolidationNeeded = types.NewBool(true)
				})
				fmt.Println("ok")
			case len(words) == 3 && words[0] == "age":
				hours, _ := strconv.Atoi(words[2])
				withVM(words[1], func(vm *simulator.VirtualMachine) {
					if vm.Snapshot != nil {
						age(vm.Snapshot.RootSnapshotList, time.Duration(hours)*time.Hour)
					}
				})
				fmt.Println("ok")
			default:
				fmt.Println("unknown")
			}
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
	return snapshotField(name, func(t types.VirtualMachineSnapshotTree) string { return t.Name })
}

func snapshotDescriptions(name string) []string {
	return snapshotField(name, func(t types.VirtualMachineSnapshotTree) string { return t.Description })
}

// One field of every snapshot of the VM called name, tree order.
func snapshotField(name string, field func(types.VirtualMachineSnapshotTree) string) []string {
	names := []string{}
	var walk func(trees []types.VirtualMachineSnapshotTree)
	walk = func(trees []types.VirtualMachineSnapshotTree) {
		for _, t := range trees {
			names = append(names, field(t))
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

// Runs change on the VM called name, under the simulator's lock.
func withVM(name string, change func(*simulator.VirtualMachine)) {
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Name == name {
			simulator.Map.WithLock(vm, func() { change(vm) })
		}
	}
}

// Makes every snapshot in trees by earlier.
func age(trees []types.VirtualMachineSnapshotTree, by time.Duration) {
	for i := range trees {
		trees[i].CreateTime = trees[i].CreateTime.Add(-by)
		age(trees[i].ChildSnapshotList, by)
	}
}
