using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Tests;

/// <summary>The body seam: Wharf file ids in model requests become the provider's copies, every other byte kept.</summary>
public sealed class ProviderFilesRewriterTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private const string OtherWs = "ws_00000000000000000000000000000002";
    private static CancellationToken Ct => CancellationToken.None;

    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _catalog;
    private readonly FakeBlobStore _blobs;
    private readonly FakeFileCopyCatalog _copies;
    private readonly FakeFilesProvider _openai;
    private readonly FakeProvider _mock = new("mock");
    private readonly FileService _files;
    private readonly FakeDeferredBlobDeletions _deferred = new(new CallLog());
    private readonly FileIdRewriter _rewriter;

    public ProviderFilesRewriterTests()
    {
        var log = new CallLog();
        _catalog = new FakeFileCatalog(log, _workspaces, _time);
        _blobs = new FakeBlobStore(log);
        _copies = new FakeFileCopyCatalog().Attach(_catalog, _time);
        _openai = new FakeFilesProvider("openai", null, _time);
        var registry = new ProviderList(_openai, _mock);
        var deletions = new UpstreamDeletions(_copies, registry, Options.Create(new ProviderFilesOptions()), _time, NullLogger<UpstreamDeletions>.Instance);
        var filesOptions = Options.Create(new FilesOptions());
        _files = new FileService(_catalog, _workspaces, new EmptyUploadCatalog(), _blobs, registry, _copies, _deferred, deletions,
            new FilePurposes(filesOptions), new IdGenerator(_time), filesOptions, _time, NullLogger<FileService>.Instance);
        _rewriter = new FileIdRewriter(new ProviderFileCopies(_files, _copies, registry, _workspaces, deletions, _time, NullLogger<ProviderFileCopies>.Instance));
    }

    private async Task<string> FileAsync(string workspace = Ws, string text = "pdf bytes")
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        await using var staged = (await _files.StageAsync(workspace, stream, Ct)).Value;
        return (await _files.CreateAsync(workspace, new FileUploadRequest { Purpose = "user_data", Filename = "doc.pdf" }, staged, Ct)).Value.Id;
    }

    private Task<ModelBodyRewrite> RewriteAsync(string body, IProvider provider, string workspace = Ws)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        using var parsed = JsonDocument.Parse(bytes);
        var context = new ModelBodyContext(workspace, new RegisteredProvider(provider, true, null), ProviderCapability.ChatCompletions, parsed.RootElement.Clone(), bytes);
        return _rewriter.RewriteAsync(context, Ct).AsTask();
    }

    [Fact]
    public async Task ChatFilePartsAndResponsesInputFilesAreRewrittenAndEveryOtherByteKept()
    {
        string a = await FileAsync(text: "first");
        string b = await FileAsync(text: "second");
        string body = $$$"""
            {"model":"gpt-4o",  "messages":[{"role":"user","content":[{"type":"text","text":"file_id {{{a}}} in text stays"},
              {"type":"file","file":{"file_id":"{{{a}}}"}}]},{"role":"user","content":[{"type":"file","file":{"file_id" : "{{{b}}}"}}]}],
             "input":[{"role":"user","content":[{"type":"input_file","file_id":"{{{a}}}"}]}],"n":1.50,"other_id":"{{{b}}}"}
            """;

        var rewrite = await RewriteAsync(body, _openai);

        Assert.Null(rewrite.Failure);
        Assert.Null(rewrite.Refusal);
        string upA = _copies.Copies.Single(c => c.FileId == a).UpstreamId;
        string upB = _copies.Copies.Single(c => c.FileId == b).UpstreamId;
        string expected = body
            .Replace($"\"file_id\":\"{a}\"", $"\"file_id\":\"{upA}\"", StringComparison.Ordinal)
            .Replace($"\"file_id\" : \"{b}\"", $"\"file_id\" : \"{upB}\"", StringComparison.Ordinal);
        Assert.Equal(expected, Encoding.UTF8.GetString(rewrite.Body.Span));
        Assert.Equal(2, _openai.Uploads);
        Assert.Equal("first", Encoding.UTF8.GetString(_openai.Files[upA].Content));
    }

    [Fact]
    public async Task AProviderWithoutFilesOrABodyWithoutWharfIdsGetsTheSameBytes()
    {
        string a = await FileAsync();
        byte[] body = Encoding.UTF8.GetBytes($$$"""{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"{{{a}}}"}}]}]}""");
        using var parsed = JsonDocument.Parse(body);
        var unchanged = await _rewriter.RewriteAsync(
            new ModelBodyContext(Ws, new RegisteredProvider(_mock, true, null), ProviderCapability.ChatCompletions, parsed.RootElement, body), Ct);
        Assert.True(unchanged.Body.Span.SequenceEqual(body));

        var upstreamIds = await RewriteAsync("""{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc123"}}]}]}""", _openai);
        Assert.Contains("\"file-abc123\"", Encoding.UTF8.GetString(upstreamIds.Body.Span), StringComparison.Ordinal);
        Assert.Equal(0, _openai.Uploads);
    }

    [Fact]
    public async Task AnotherWorkspacesFileIsRefusedNamingItsPathAndNeverCopied()
    {
        string theirs = await FileAsync(OtherWs);

        var rewrite = await RewriteAsync($$$"""{"model":"m","messages":[{"role":"user","content":["x",{"type":"file","file":{"file_id":"{{{theirs}}}"}}]}]}""", _openai);

        var refusal = rewrite.Refusal!;
        Assert.Equal((400, "messages[0].content[1].file.file_id", "file_not_found"), (refusal.Status, refusal.Param, refusal.Code));
        Assert.Equal($"No such File object: {theirs}", refusal.Message);
        Assert.Equal(0, _openai.Uploads);
        Assert.Empty(_copies.Copies);
    }

    [Fact]
    public async Task ACopyTheProviderRefusesFailsThisCandidate()
    {
        string a = await FileAsync();
        _openai.UploadFailure = UpstreamFailure.FromAnswer(503, null, null, null);

        var rewrite = await RewriteAsync($$$"""{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"{{{a}}}"}]}]}""", _openai);

        Assert.Equal(503, rewrite.Failure!.Status);
        Assert.Null(rewrite.Refusal);
    }

    [Fact]
    public async Task AnEscapedFileIdIsDecodedBeforeItsOwnershipIsChecked()
    {
        string theirs = await FileAsync(OtherWs);
        string escaped = string.Concat(theirs.Select(c => $"\\u{(int)c:x4}"));

        var refused = await RewriteAsync($$$"""{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file\u005fid":"{{{escaped}}}"}}]}]}""", _openai);

        var refusal = refused.Refusal!;
        Assert.Equal((400, "messages[0].content[0].file.file_id", "file_not_found"), (refusal.Status, refusal.Param, refusal.Code));
        Assert.Equal($"No such File object: {theirs}", refusal.Message);
        Assert.Equal(0, _openai.Uploads);

        string mine = await FileAsync();
        string mineEscaped = mine[..5] + "\\u" + ((int)mine[5]).ToString("x4", System.Globalization.CultureInfo.InvariantCulture) + mine[6..];
        var rewritten = await RewriteAsync($$$"""{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"{{{mineEscaped}}}"}]}]}""", _openai);
        Assert.Null(rewritten.Refusal);
        string up = _copies.Copies.Single(c => c.FileId == mine).UpstreamId;
        Assert.Contains($"\"file_id\":\"{up}\"", Encoding.UTF8.GetString(rewritten.Body.Span), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherWorkspacesUpstreamIdIsRefusedAndTheWorkspacesOwnIsSentAsItIs()
    {
        string theirs = await FileAsync(OtherWs, "theirs");
        Assert.Null((await RewriteAsync($$$"""{"model":"m","input":[{"type":"input_file","file_id":"{{{theirs}}}"}]}""", _openai, OtherWs)).Refusal);
        string theirUpstream = _copies.Copies.Single(c => c.FileId == theirs).UpstreamId;
        string mine = await FileAsync(text: "mine");
        Assert.Null((await RewriteAsync($$$"""{"model":"m","input":[{"type":"input_file","file_id":"{{{mine}}}"}]}""", _openai)).Refusal);
        string myUpstream = _copies.Copies.Single(c => c.FileId == mine).UpstreamId;

        var refused = await RewriteAsync($$$"""{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"{{{theirUpstream}}}"}}]}]}""", _openai);
        var refusal = refused.Refusal!;
        Assert.Equal((400, "messages[0].content[0].file.file_id", "file_not_found"), (refusal.Status, refusal.Param, refusal.Code));
        Assert.Equal($"No such File object: {theirUpstream}", refusal.Message);

        // Escaped, it is the same id.
        string escaped = string.Concat(theirUpstream.Select(c => $"\\u{(int)c:x4}"));
        Assert.NotNull((await RewriteAsync($$$"""{"model":"m","input":[{"type":"input_file","file_id":"{{{escaped}}}"}]}""", _openai)).Refusal);

        string body = $$$"""{"model":"m","input":[{"type":"input_file","file_id":"{{{myUpstream}}}"}]}""";
        var own = await RewriteAsync(body, _openai);
        Assert.Null(own.Refusal);
        Assert.Equal(body, Encoding.UTF8.GetString(own.Body.Span));
    }
}
