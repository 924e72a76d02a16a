using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;

namespace Wharf.Core.Tests;

public sealed class FileListQueryTests
{
    private const string Workspace = "ws_00000000000000000000000000000001";
    private static readonly FilesOptions Options = new() { DefaultListLimit = 10_000, MaxListLimit = 10_000 };
    private static readonly FilePurposes Purposes = new(Microsoft.Extensions.Options.Options.Create(new FilesOptions()));
    private static readonly string GoodId = WharfIds.File(new IdGenerator(TimeProvider.System).Next());

    private static Result<FileListQuery> Parse(FileListRequest request, FilesOptions? options = null) =>
        FileListQuery.Parse(Workspace, request, options ?? Options, Purposes);

    private static WharfError AssertBadRequest(Result<FileListQuery> result, string param)
    {
        Assert.False(result.IsOk);
        var error = result.Error;
        Assert.Equal(400, error.Status);
        Assert.Equal(param, error.Param);
        Assert.Equal("invalid_request_error", error.Type);
        return error;
    }

    [Fact]
    public void Defaults()
    {
        var result = Parse(new FileListRequest());
        Assert.True(result.IsOk);
        var query = result.Value;
        Assert.Equal(Workspace, query.WorkspaceId);
        Assert.Equal(10_000, query.Limit);
        Assert.True(query.Descending);
        Assert.Null(query.After);
        Assert.Null(query.Before);
        Assert.Null(query.Purpose);
        Assert.Null(query.Status);
        Assert.Null(query.Provider);
        Assert.Null(query.Collection);
        Assert.Empty(query.Metadata);
    }

    [Fact]
    public void DefaultLimitComesFromTheOptions()
    {
        var options = new FilesOptions { DefaultListLimit = 20, MaxListLimit = 100 };
        Assert.Equal(20, Parse(new FileListRequest(), options).Value.Limit);
        Assert.Equal(100, Parse(new FileListRequest { Limit = "100" }, options).Value.Limit);
        AssertBadRequest(Parse(new FileListRequest { Limit = "101" }, options), "limit");
    }

    [Theory]
    [InlineData("1", 1)]
    [InlineData("5", 5)]
    [InlineData("10000", 10_000)]
    public void LimitInRange(string raw, int expected)
    {
        Assert.Equal(expected, Parse(new FileListRequest { Limit = raw }).Value.Limit);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("1e3")]
    [InlineData("10001")]
    [InlineData("")]
    [InlineData(" 5")]
    [InlineData("5.0")]
    [InlineData("+5")]
    [InlineData("99999999999999999999")]
    public void LimitOutOfRangeOrNotANumber(string raw)
    {
        AssertBadRequest(Parse(new FileListRequest { Limit = raw }), "limit");
    }

    [Fact]
    public void Order()
    {
        Assert.False(Parse(new FileListRequest { Order = "asc" }).Value.Descending);
        Assert.True(Parse(new FileListRequest { Order = "desc" }).Value.Descending);
        AssertBadRequest(Parse(new FileListRequest { Order = "up" }), "order");
        AssertBadRequest(Parse(new FileListRequest { Order = "" }), "order");
    }

    [Fact]
    public void CursorsMustBeFileIds()
    {
        Assert.Equal(GoodId, Parse(new FileListRequest { After = GoodId }).Value.After);
        Assert.Equal(GoodId, Parse(new FileListRequest { Before = GoodId }).Value.Before);

        foreach (string bad in new[] { "", "file-abc", "upload_" + new string('0', 32), "file-zzzzzzzzzzzzzzzzzzzzzz", GoodId + "0", "1" })
        {
            AssertBadRequest(Parse(new FileListRequest { After = bad }), "after");
            AssertBadRequest(Parse(new FileListRequest { Before = bad }), "before");
        }
    }

    [Fact]
    public void AfterAndBeforeTogetherAreRejected()
    {
        var result = Parse(new FileListRequest { After = GoodId, Before = GoodId });
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Contains(result.Error.Param, new[] { "after", "before" });
    }

    [Theory]
    [InlineData("assistants")]
    [InlineData("batch")]
    [InlineData("fine-tune")]
    [InlineData("vision")]
    [InlineData("user_data")]
    [InlineData("evals")]
    [InlineData("batch_output")]
    public void KnownPurposeFilters(string purpose)
    {
        Assert.Equal(purpose, Parse(new FileListRequest { Purpose = purpose }).Value.Purpose);
    }

    [Theory]
    [InlineData("document")]
    [InlineData("Batch")]
    [InlineData("")]
    [InlineData("fine_tune")]
    public void UnknownPurposeFilter(string purpose)
    {
        var error = AssertBadRequest(Parse(new FileListRequest { Purpose = purpose }), "purpose");
        Assert.Contains("assistants", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExtraPurposeCanBeFiltered()
    {
        var purposes = new FilePurposes(Microsoft.Extensions.Options.Options.Create(new FilesOptions { ExtraPurposes = ["document"] }));
        var result = FileListQuery.Parse(Workspace, new FileListRequest { Purpose = "document" }, Options, purposes);
        Assert.Equal("document", result.Value.Purpose);
    }

    [Theory]
    [InlineData("uploaded")]
    [InlineData("processed")]
    [InlineData("error")]
    [InlineData("processing")]
    public void KnownStatusFilters(string status)
    {
        Assert.Equal(status, Parse(new FileListRequest { Status = status }).Value.Status);
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("Processed")]
    [InlineData("")]
    [InlineData("queued")]
    public void UnknownStatusFilter(string status)
    {
        AssertBadRequest(Parse(new FileListRequest { Status = status }), "status");
    }

    [Fact]
    public void ProviderAndCollectionArePassedOn()
    {
        var query = Parse(new FileListRequest { Provider = "openai", Collection = "docs" }).Value;
        Assert.Equal("openai", query.Provider);
        Assert.Equal("docs", query.Collection);
        AssertBadRequest(Parse(new FileListRequest { Provider = "" }), "provider");
    }

    [Fact]
    public void MetadataFiltersArePassedOnInOrder()
    {
        KeyValuePair<string, string>[] filters = [new("team", "a"), new("env", "prod")];
        var query = Parse(new FileListRequest { Metadata = filters }).Value;
        Assert.Equal(filters, query.Metadata);
    }

    [Fact]
    public void MetadataFilterKeyLength()
    {
        Assert.True(Parse(new FileListRequest { Metadata = [new(new string('k', 64), "v")] }).IsOk);
        AssertBadRequest(Parse(new FileListRequest { Metadata = [new(new string('k', 65), "v")] }), "metadata");
        AssertBadRequest(Parse(new FileListRequest { Metadata = [new("", "v")] }), "metadata");
    }

    [Fact]
    public void MetadataFilterCount()
    {
        var max = Enumerable.Range(0, FileListQuery.MaxMetadataFilters).Select(i => new KeyValuePair<string, string>("k" + i, "v")).ToList();
        Assert.True(Parse(new FileListRequest { Metadata = max }).IsOk);
        var tooMany = Enumerable.Range(0, FileListQuery.MaxMetadataFilters + 1).Select(i => new KeyValuePair<string, string>("k" + i, "v")).ToList();
        AssertBadRequest(Parse(new FileListRequest { Metadata = tooMany }), "metadata");
    }
}
