// compose-render loads a Compose file with compose-go, the loader that
// `docker compose` itself uses, and prints the resolved project as JSON: the
// same document as `docker compose config --format json`. It lets the
// deployment checks validate and inspect docker-compose.yaml without a Docker
// engine. tests/env/compose-render.sh builds it and prints the binary's path.
//
// Usage:
//
//	compose-render -f docker-compose.yaml [--profile NAME]... [--env K=V]...
//
// As `docker compose config` does, the file is validated against the Compose
// schema, interpolated, normalized and checked for consistency; the profiles
// are applied and resources that no active service uses are dropped. Unlike
// it, only the --env pairs are visible to interpolation (no process
// environment, no .env file), so that the output is reproducible; an --env
// COMPOSE_PROFILES=a,b stands for the profiles when no --profile is given.
// The project name is "tickflow". On an invalid file the loader's error goes
// to stderr and the exit status is 1 (2 for a usage error).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

const projectName = "tickflow"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var file string
	var profiles, env listFlag
	flag.StringVar(&file, "f", "", "Compose file to load (required)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.Func("env", "K=V visible to interpolation (repeatable)", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return errors.New("want K=V")
		}
		env = append(env, kv)
		return nil
	})
	flag.Parse()
	if file == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-render -f FILE [--profile NAME]... [--env K=V]...")
		os.Exit(2)
	}

	out, err := render(file, profiles, env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-render: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

func render(file string, profiles, env []string) ([]byte, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithEnv(env), // and nothing else: no WithOsEnv, no WithDotEnv
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDiscardEnvFile,
		cli.WithDefaultProfiles(profiles...),
		cli.WithName(projectName),
	)
	if err != nil {
		return nil, err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	return project.WithoutUnnecessaryResources().MarshalJSON()
}
