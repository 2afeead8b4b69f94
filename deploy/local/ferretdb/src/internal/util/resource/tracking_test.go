// Tests of resource-tracking.patch (the inbox's; see that patch's top): tracking only in debug builds.

package resource

import (
	"runtime/pprof"
	"testing"

	"github.com/FerretDB/FerretDB/internal/util/debugbuild"
)

type trackedThing struct {
	token *Token
}

func count(obj any) int {
	p := pprof.Lookup(profileName(obj))
	if p == nil {
		return 0
	}
	return p.Count()
}

func TestTrackingOnlyInDebugBuilds(t *testing.T) {
	first := &trackedThing{token: NewToken()}
	second := &trackedThing{token: NewToken()}
	before := count(first)

	Track(first, first.token)
	Track(second, second.token)

	if !debugbuild.Enabled {
		if got := count(first); got != before {
			t.Fatalf("a release build tracked: %d profile entries, want %d", got, before)
		}
		// Untrack of what was never tracked must not panic in a release build.
		Untrack(first, first.token)
		Untrack(second, second.token)
		return
	}

	// A debug build tracks as unpatched FerretDB does: one entry per object, removed by Untrack.
	if got := count(first); got != before+2 {
		t.Fatalf("a debug build tracked %d objects, want %d", got-before, 2)
	}
	Untrack(first, first.token)
	if got := count(first); got != before+1 {
		t.Fatalf("after one Untrack: %d entries, want %d", got-before, 1)
	}
	Untrack(second, second.token)
	if got := count(first); got != before {
		t.Fatalf("after both: %d entries, want %d", got-before, 0)
	}
}
