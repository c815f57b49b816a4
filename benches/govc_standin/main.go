// The one-process-per-snapshot peer of quiesce's vSphere provider, as a
// site's `snapshot.command: govc snapshot.create …` runs it: each call logs
// in, finds the VM by name, creates the snapshot, waits for its task and
// logs out. Built offline from Debian's govmomi (Debian ships no govc).
//
//	govc-standin URL VM NAME     (URL with user:pass@, TLS not verified)
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: govc-standin URL VM NAME")
		os.Exit(2)
	}
	ctx := context.Background()
	u, err := url.Parse(os.Args[1])
	if err != nil {
		fail(err)
	}
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		fail(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		fail(err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(ctx, os.Args[2])
	if err != nil {
		fail(err)
	}
	task, err := vm.CreateSnapshot(ctx, os.Args[3], "", false, false)
	if err != nil {
		fail(err)
	}
	if err := task.Wait(ctx); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "govc-standin:", err)
	os.Exit(1)
}
