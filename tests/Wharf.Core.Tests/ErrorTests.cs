using Wharf.Core.Errors;

namespace Wharf.Core.Tests;

public sealed class WharfErrorTests
{
    [Theory]
    [InlineData(400, "invalid_request_error", "user", "user", "invalid_request")]
    [InlineData(401, "authentication_error", "user", "user", "unauthorized")]
    [InlineData(403, "permission_error", "user", "user", "forbidden")]
    [InlineData(404, "invalid_request_error", "user", "user", "not_found")]
    [InlineData(413, "invalid_request_error", "user", "user", "payload_too_large")]
    [InlineData(415, "invalid_request_error", "user", "user", "unsupported_media_type")]
    [InlineData(429, "rate_limit_error", "user", "user", "rate_limited")]
    [InlineData(500, "server_error", "system", "gateway", "internal_error")]
    [InlineData(502, "upstream_error", "system", "upstream", "upstream_error")]
    [InlineData(503, "upstream_error", "system", "upstream", "unavailable")]
    [InlineData(504, "upstream_error", "system", "upstream", "upstream_timeout")]
    public void StatusMapsToEnvelopeFields(int status, string type, string errorType, string origin, string reason)
    {
        var error = new WharfError(status, "message");
        Assert.Equal(type, error.Type);
        Assert.Equal(errorType, error.ErrorType);
        Assert.Equal(origin, error.Origin);
        Assert.Equal(reason, error.Reason);
    }

    [Theory]
    [InlineData("storage_unavailable")]
    [InlineData("not_ready")]
    [InlineData("insufficient_storage")]
    public void A_503_about_Wharfs_own_storage_is_a_server_error_of_the_gateway(string code)
    {
        var error = new WharfError(503, "message", null, code);
        Assert.Equal("server_error", error.Type);
        Assert.Equal("gateway", error.Origin);
        Assert.Equal("system", error.ErrorType);
        Assert.Equal(code, error.Reason);
    }

    [Fact]
    public void ReasonIsTheCodeWhenThereIsOne()
    {
        Assert.Equal("invalid_purpose", new WharfError(400, "m", "purpose", "invalid_purpose").Reason);
        Assert.Equal("file_too_large", WharfErrors.FileTooLarge(10).Reason);
    }

    [Fact]
    public void NoSuchFile()
    {
        const string id = "file-0000000000000000000001";
        var error = WharfErrors.NoSuchFile(id);
        Assert.Equal(404, error.Status);
        Assert.Equal("No such File object: " + id, error.Message);
        Assert.Equal("id", error.Param);
        Assert.Null(error.Code);
        Assert.Equal("invalid_request_error", error.Type);
    }

    [Fact]
    public void Missing()
    {
        var error = WharfErrors.Missing("purpose");
        Assert.Equal(400, error.Status);
        Assert.Equal("purpose", error.Param);
        Assert.Contains("purpose", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelpersUseTheirStatus()
    {
        Assert.Equal(413, WharfErrors.FileTooLarge(1).Status);
        Assert.Equal(415, WharfErrors.NotMultipart().Status);
        Assert.Equal(401, WharfErrors.Unauthorized().Status);
        Assert.Equal(500, WharfErrors.Internal().Status);
        Assert.Equal(400, WharfErrors.MalformedMultipart("x").Status);
        Assert.Equal(405, WharfErrors.MethodNotAllowed("PUT", "/v1/files").Status);
        Assert.Equal(404, WharfErrors.NotFoundRoute("/nope").Status);
    }

    [Fact]
    public void ResultCarriesValueOrError()
    {
        Result<int> ok = 5;
        Assert.True(ok.IsOk);
        Assert.Null(ok.Error);
        Assert.Equal(5, ok.Value);

        Result<int> bad = WharfErrors.Missing("x");
        Assert.False(bad.IsOk);
        Assert.Equal("x", bad.Error.Param);
        Assert.Throws<InvalidOperationException>(() => bad.Value);
    }

    [Fact]
    public void AnErrorResultCannotBeMadeWithoutItsError()
    {
        WharfError? none = null;
        var thrown = Assert.Throws<ArgumentNullException>(() => { Result<int> result = none!; return result; });
        Assert.Equal("error", thrown.ParamName);
    }

    [Fact]
    public void ErrorIsNullExactlyWhenTheResultIsOk()
    {
        // The compiler holds callers to this through [MemberNotNullWhen(false, nameof(Error))] on IsOk (the build
        // treats nullable warnings as errors, so `bad.Error.Param` above compiles only with it); here, at run time,
        // for values, errors and the struct's default.
        Result<string> ok = "v";
        Result<string> bad = WharfErrors.Invalid("p", "m");
        Result<string> none = default;
        foreach (var result in new[] { ok, bad, none })
        {
            Assert.Equal(result.IsOk, result.Error is null);
        }
        Assert.False(bad.IsOk);
        Assert.True(ok.IsOk);
    }
}
