// The AWS SDK for Go v2 client of credfresh's SDK matrix (tests/e2e/sdk_matrix.rs), built
// offline against Debian's golang-github-aws-aws-sdk-go-v2-dev by scripts/ensure-sdk-go.sh.
//
//	client once           one GetCallerIdentity from a fresh process
//	client long SECONDS   one client, a call every 2 s for SECONDS
//
// Credentials come from the SDK's default chain (config.LoadDefaultConfig): AWS_PROFILE with
// the shared files, or the container endpoint. STS is $AWS_ENDPOINT_URL_STS, set explicitly
// (this SDK release does not read that variable). One JSON line per call: {"call", "ok",
// "arn", "key"} or {"call", "ok": false, "error"}; "key" is the access key ID that signed the
// request, read from its Authorization header. Secrets are never printed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var credential = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func emit(v map[string]interface{}) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "once" && os.Args[1] != "long") {
		fmt.Fprintln(os.Stderr, "usage: client once | client long SECONDS")
		os.Exit(2)
	}
	seconds := 0.0
	if os.Args[1] == "long" {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: client long SECONDS")
			os.Exit(2)
		}
		var err error
		if seconds, err = strconv.ParseFloat(os.Args[2], 64); err != nil {
			fmt.Fprintln(os.Stderr, "SECONDS:", err)
			os.Exit(2)
		}
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_STS")
	if endpoint == "" {
		fmt.Fprintln(os.Stderr, "AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS")
		os.Exit(2)
	}
	ctx := context.Background()
	// The SDK's cache uses credentials up to their last instant by default, so a request
	// signed in the last milliseconds reaches the server expired; refresh 5 s ahead.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(1),
		config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = 5 * time.Second
		}))
	if err != nil {
		emit(map[string]interface{}{"call": 1, "ok": false, "error": "LoadDefaultConfig: " + err.Error()})
		return
	}
	var signedBy string
	capture := middleware.DeserializeMiddlewareFunc("CaptureSigner",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
			middleware.DeserializeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				if m := credential.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
					signedBy = m[1]
				}
			}
			return next.HandleDeserialize(ctx, in)
		})
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.EndpointResolver = sts.EndpointResolverFromURL(endpoint)
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Deserialize.Add(capture, middleware.After)
		})
	})
	end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for call := 1; ; call++ {
		signedBy = ""
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			emit(map[string]interface{}{"call": call, "ok": false, "error": err.Error()})
		} else {
			emit(map[string]interface{}{"call": call, "ok": true, "arn": aws.ToString(out.Arn), "key": signedBy})
		}
		if !time.Now().Before(end) {
			return
		}
		time.Sleep(2 * time.Second)
	}
}
