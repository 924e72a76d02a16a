using Wharf.Cli.Http;

namespace Wharf.Cli.Tests;

public sealed class ServerAddressTests
{
    [Theory]
    [InlineData("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/files", "http://127.0.0.1:8080/admin/workspaces")]
    [InlineData("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/files", "http://127.0.0.1:8080/admin/workspaces")]
    [InlineData("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1/files", "http://127.0.0.1:8080/admin/workspaces")]
    [InlineData("https://gw.example/v1/", "https://gw.example/v1/files", "https://gw.example/admin/workspaces")]
    [InlineData("https://gw.example/wharf/v1", "https://gw.example/wharf/v1/files", "https://gw.example/wharf/admin/workspaces")]
    public void The_api_and_admin_routes_are_found_with_or_without_v1(string url, string files, string workspaces)
    {
        var address = ServerAddress.Parse(url);

        Assert.True(address.IsOk);
        Assert.Equal(files, address.Value.Api("files").ToString());
        Assert.Equal(workspaces, address.Value.Admin("workspaces").ToString());
    }

    [Theory]
    [InlineData("127.0.0.1:8080")]
    [InlineData("ftp://host")]
    [InlineData("http://host/?x=1")]
    public void Anything_else_is_a_usage_error(string url)
    {
        var address = ServerAddress.Parse(url);

        Assert.False(address.IsOk);
        Assert.Equal(2, address.Failure!.ExitCode);
    }
}
