using System.Security.Cryptography;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>
/// The behaviour every storage back-end must have, written against the ports only. A back-end runs it by
/// subclassing and creating a fresh, empty instance of itself in <see cref="CreateBackendAsync"/>.
/// </summary>
public abstract partial class StorageConformanceTests : IAsyncLifetime
{
    protected const string WsA = "ws_0000000000000000000000000000000a";
    protected const string WsB = "ws_0000000000000000000000000000000b";
    private const long Max = long.MaxValue;

    private IStorageBackend? _backend;

    /// <summary>The clock the catalog uses for hiding expired files.</summary>
    protected ManualTimeProvider Clock { get; } = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    protected IStorageBackend Backend => _backend ?? throw new InvalidOperationException("not initialised");

    private IFileCatalog Catalog => Backend.Files;

    private IBlobStore Blobs => Backend.Blobs;

    private long Now => Clock.GetUtcNow().ToUnixTimeSeconds();

    private long NowMs => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A fresh, empty back-end whose catalog reads the time from <paramref name="time"/>.</summary>
    protected abstract Task<IStorageBackend> CreateBackendAsync(TimeProvider time);

    public async Task InitializeAsync() => _backend = await CreateBackendAsync(Clock);

    public async Task DisposeAsync()
    {
        if (_backend is not null)
        {
            await _backend.DisposeAsync();
        }
    }

    private readonly IdGenerator _ids = new(TimeProvider.System);

    private string NewFileId() => WharfIds.File(_ids.Next());

    private static CancellationToken Ct => CancellationToken.None;

    // ---------------------------------------------------------------- catalog

    [Fact]
    public async Task InsertThenGetRoundTripsEveryField()
    {
        var file = new FileRecord
        {
            Id = NewFileId(),
            WorkspaceId = WsA,
            Bytes = long.MaxValue - 1, // exact beyond a double's 53 bits
            CreatedAt = 1_750_000_123,
            Filename = "r\u00e9sum\u00e9 \u65e5\u672c \U0001F600 ../../etc/passwd \"q\" back\\slash [1,{}]",
            Purpose = "fine-tune",
            Status = "error",
            StatusDetails = "line 3:\tbad JSON\r\n{\"a\":null}",
            ExpiresAt = Now + 86_400,
            Metadata = new Dictionary<string, string>
            {
                ["team"] = "search",
                ["note"] = "h\u00e9llo \u65e5\u672c \U0001F600",
                ["quote"] = "\"'<>&\\",
                ["empty"] = "",
                ["k\"e\\y \u00e9\U0001F600\t"] = "v",
            },
            Collection = "coll\u00e9ction",
            Provider = "openai",
            Sha256 = Convert.ToHexStringLower(SHA256.HashData("x"u8)),
            ContentType = "application/jsonl; charset=utf-8",
            Segmented = true,
        };
        await Catalog.InsertAsync(file, Ct);

        var read = await Catalog.GetAsync(WsA, file.Id, Ct);
        Assert.NotNull(read);
        Assert.Equal(file.Id, read.Id);
        Assert.Equal(file.WorkspaceId, read.WorkspaceId);
        Assert.Equal(file.Bytes, read.Bytes);
        Assert.Equal(file.CreatedAt, read.CreatedAt);
        Assert.Equal(file.Filename, read.Filename);
        Assert.Equal(file.Purpose, read.Purpose);
        Assert.Equal(file.Status, read.Status);
        Assert.Equal(file.StatusDetails, read.StatusDetails);
        Assert.Equal(file.ExpiresAt, read.ExpiresAt);
        Assert.Equal(file.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal), read.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(file.Collection, read.Collection);
        Assert.Equal(file.Provider, read.Provider);
        Assert.Equal(file.Sha256, read.Sha256);
        Assert.Equal(file.ContentType, read.ContentType);
        Assert.True(read.Segmented);
    }

    [Fact]
    public async Task InsertThenGetKeepsNulls()
    {
        var file = TestFiles.Make(WsA, NewFileId());
        await Catalog.InsertAsync(file, Ct);

        var read = await Catalog.GetAsync(WsA, file.Id, Ct);
        Assert.NotNull(read);
        Assert.Null(read.StatusDetails);
        Assert.Null(read.ExpiresAt);
        Assert.Null(read.Collection);
        Assert.Null(read.ContentType);
        Assert.NotNull(read.Metadata);
        Assert.Empty(read.Metadata);
        Assert.Equal(file.Filename, read.Filename);
        Assert.False(read.Segmented);
    }

    [Fact]
    public async Task GetWithTheWrongWorkspaceIsNull()
    {
        var file = TestFiles.Make(WsA, NewFileId());
        await Catalog.InsertAsync(file, Ct);
        Assert.Null(await Catalog.GetAsync(WsB, file.Id, Ct));
        Assert.Null(await Catalog.GetAsync(WsA, NewFileId(), Ct));
        Assert.NotNull(await Catalog.GetAsync(WsA, file.Id, Ct));
    }

    [Fact]
    public async Task DeleteIsTrueThenFalse()
    {
        var file = TestFiles.Make(WsA, NewFileId(), metadata: new Dictionary<string, string> { ["k"] = "v" });
        await Catalog.InsertAsync(file, Ct);

        Assert.True(await Catalog.DeleteAsync(WsA, file.Id, Ct));
        Assert.Null(await Catalog.GetAsync(WsA, file.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(WsA, file.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(WsA, NewFileId(), Ct));

        // Its metadata went with it.
        var page = await Catalog.ListAsync(Query(WsA, metadata: [new("k", "v")]), Ct);
        Assert.Empty(page.Items);
        Assert.Empty((await Catalog.FindExistingAsync([file.Id], Ct)));
    }

    [Fact]
    public async Task DeleteOfAnotherWorkspacesFileIsFalseAndItStays()
    {
        var file = TestFiles.Make(WsA, NewFileId(), metadata: new Dictionary<string, string> { ["k"] = "v" });
        await Catalog.InsertAsync(file, Ct);

        Assert.False(await Catalog.DeleteAsync(WsB, file.Id, Ct));
        Assert.NotNull(await Catalog.GetAsync(WsA, file.Id, Ct));
        var page = await Catalog.ListAsync(Query(WsA, metadata: [new("k", "v")]), Ct);
        Assert.Equal(file.Id, Assert.Single(page.Items).Id);
    }

    [Fact]
    public async Task ConcurrentInsertsAllLand()
    {
        var files = Enumerable.Range(0, 40).Select(i => TestFiles.Make(i % 2 == 0 ? WsA : WsB, NewFileId(),
            metadata: new Dictionary<string, string> { ["n"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) })).ToList();
        await Task.WhenAll(files.Select(f => Catalog.InsertAsync(f, Ct)));
        var existing = await Catalog.FindExistingAsync(files.Select(f => f.Id).ToList(), Ct);
        Assert.Equal(40, existing.Count);
        Assert.Equal(20, (await Catalog.ListAsync(Query(WsA, limit: 100), Ct)).Items.Count);
    }

    // ---------------------------------------------------------------- listing

    internal static FileListQuery Query(string ws, int limit = 10_000, bool descending = true, string? after = null, string? before = null,
        string? purpose = null, string? status = null, string? provider = null, string? collection = null,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null) => new()
        {
            WorkspaceId = ws,
            Limit = limit,
            Descending = descending,
            After = after,
            Before = before,
            Purpose = purpose,
            Status = status,
            Provider = provider,
            Collection = collection,
            Metadata = metadata ?? [],
        };

    private static readonly string[] PurposeCycle = ["assistants", "batch", "user_data"];

    /// <summary>The copies <see cref="Insert57Async"/> recorded, by file and provider.</summary>
    private readonly HashSet<(string FileId, string Provider)> _copied = [];

    /// <summary>57 files in <see cref="WsA"/> with varied fields, interleaved with 20 in <see cref="WsB"/>; ids in creation order.</summary>
    private async Task<List<FileRecord>> Insert57Async()
    {
        var mine = new List<FileRecord>();
        var all = new List<FileRecord>();
        for (int i = 0; i < 57; i++)
        {
            var file = TestFiles.Make(WsA, NewFileId(),
                purpose: PurposeCycle[i % 3],
                status: i % 2 == 0 ? "processed" : "error",
                provider: i % 4 == 0 ? "openai" : "local",
                collection: i % 5 == 0 ? "five" : i % 5 == 1 ? "one" : null,
                metadata: new Dictionary<string, string>
                {
                    ["team"] = i % 2 == 0 ? "a" : "b",
                    ["env"] = i % 3 == 0 ? "prod" : "dev",
                    ["n"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
                expiresAt: i % 7 == 0 ? Now + 3600 : null);
            mine.Add(file);
            all.Add(file);
            if (i % 3 == 0)
            {
                // Another workspace's file with the same fields, between ours.
                all.Add(file with { Id = NewFileId(), WorkspaceId = WsB });
            }
        }
        // Insert out of order: the catalog must order by id, not by insertion.
        foreach (var file in all.OrderBy(f => f.Id.GetHashCode(StringComparison.Ordinal)))
        {
            await Catalog.InsertAsync(file, Ct);
        }
        // Copies: on the provider each was uploaded to, and every sixth also on groq.
        for (int i = 0; i < all.Count; i++)
        {
            var file = all[i];
            if (file.Provider != "local")
            {
                await Backend.Copies.InsertCopyAsync(new FileCopy(file.WorkspaceId, file.Id, file.Provider, "up-" + file.Id, 1), Ct);
                _copied.Add((file.Id, file.Provider));
            }
            if (i % 6 == 0)
            {
                await Backend.Copies.InsertCopyAsync(new FileCopy(file.WorkspaceId, file.Id, "groq", "groq-" + file.Id, 1), Ct);
                _copied.Add((file.Id, "groq"));
            }
        }
        return mine;
    }

    private static List<string> Ordered(IEnumerable<FileRecord> files, bool descending) =>
        descending
            ? files.Select(f => f.Id).OrderByDescending(id => id, StringComparer.Ordinal).ToList()
            : files.Select(f => f.Id).OrderBy(id => id, StringComparer.Ordinal).ToList();

    /// <summary>Walks every page with 'after' and checks each page and has_more; returns the ids in visiting order.</summary>
    private async Task<List<string>> WalkAfterAsync(FileListQuery first)
    {
        var seen = new List<string>();
        string? cursor = null;
        for (int guard = 0; guard < 1000; guard++)
        {
            var page = await Catalog.ListAsync(first with { After = cursor }, Ct);
            Assert.True(page.Items.Count <= first.Limit);
            seen.AddRange(page.Items.Select(f => f.Id));
            if (!page.HasMore)
            {
                return seen;
            }
            Assert.Equal(first.Limit, page.Items.Count);
            cursor = page.Items[^1].Id;
        }
        throw new InvalidOperationException("the walk did not end");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WalkingPagesWithAfterVisitsEveryFileOnceInOrder(bool descending)
    {
        var mine = await Insert57Async();
        var expected = Ordered(mine, descending);

        var pages = new List<IReadOnlyList<FileRecord>>();
        string? cursor = null;
        while (true)
        {
            var page = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending, after: cursor), Ct);
            pages.Add(page.Items);
            bool last = pages.Count == 12;
            Assert.Equal(!last, page.HasMore);
            if (!page.HasMore)
            {
                break;
            }
            cursor = page.Items[^1].Id;
        }
        Assert.Equal(12, pages.Count);
        Assert.All(pages.Take(11), p => Assert.Equal(5, p.Count));
        Assert.Equal(2, pages[^1].Count);
        Assert.Equal(expected, pages.SelectMany(p => p).Select(f => f.Id));
        Assert.All(pages.SelectMany(p => p), f => Assert.Equal(WsA, f.WorkspaceId));
    }

    [Fact]
    public async Task AFullPageWithNothingAfterItHasNoMore()
    {
        var mine = (await Insert57Async()).Take(0).ToList();
        Assert.Empty(mine);
        var all = await Catalog.ListAsync(Query(WsA, limit: 57), Ct);
        Assert.Equal(57, all.Items.Count);
        Assert.False(all.HasMore);
        var but1 = await Catalog.ListAsync(Query(WsA, limit: 56), Ct);
        Assert.Equal(56, but1.Items.Count);
        Assert.True(but1.HasMore);
    }

    [Fact]
    public async Task EmptyWorkspaceListsNothing()
    {
        var page = await Catalog.ListAsync(Query(WsA), Ct);
        Assert.Empty(page.Items);
        Assert.False(page.HasMore);
        await Insert57Async();
        page = await Catalog.ListAsync(Query("ws_000000000000000000000000000000cc"), Ct);
        Assert.Empty(page.Items);
        Assert.False(page.HasMore);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WalkingBackwardsWithBeforeReturnsThePagesNearestTheCursor(bool descending)
    {
        var mine = await Insert57Async();
        var expected = Ordered(mine, descending);

        // Start from the last item of the list and walk towards its beginning.
        int end = expected.Count - 1;
        string cursor = expected[end];
        var collected = new List<string>();
        int pages = 0;
        while (true)
        {
            var page = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending, before: cursor), Ct);
            pages++;
            int start = Math.Max(0, end - 5);
            Assert.Equal(expected[start..end], page.Items.Select(f => f.Id));
            Assert.Equal(start > 0, page.HasMore);
            collected.InsertRange(0, page.Items.Select(f => f.Id));
            if (!page.HasMore)
            {
                break;
            }
            end = start;
            cursor = page.Items[0].Id;
        }
        Assert.Equal(12, pages);
        Assert.Equal(expected[..^1], collected);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task BeforeFromTheMiddle(bool descending)
    {
        var mine = await Insert57Async();
        var expected = Ordered(mine, descending);
        var page = await Catalog.ListAsync(Query(WsA, limit: 3, descending: descending, before: expected[30]), Ct);
        Assert.Equal(expected[27..30], page.Items.Select(f => f.Id));
        Assert.True(page.HasMore);

        var head = await Catalog.ListAsync(Query(WsA, limit: 10, descending: descending, before: expected[2]), Ct);
        Assert.Equal(expected[..2], head.Items.Select(f => f.Id));
        Assert.False(head.HasMore);

        var none = await Catalog.ListAsync(Query(WsA, limit: 10, descending: descending, before: expected[0]), Ct);
        Assert.Empty(none.Items);
        Assert.False(none.HasMore);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ACursorWhoseFileWasDeletedStillWorks(bool descending)
    {
        var mine = await Insert57Async();
        var expected = Ordered(mine, descending);

        var first = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending), Ct);
        string cursor = first.Items[^1].Id;
        Assert.Equal(expected[4], cursor);
        Assert.True(await Catalog.DeleteAsync(WsA, cursor, Ct));

        var next = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending, after: cursor), Ct);
        Assert.Equal(expected[5..10], next.Items.Select(f => f.Id));

        var back = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending, before: cursor), Ct);
        Assert.Equal(expected[..4], back.Items.Select(f => f.Id));
        Assert.False(back.HasMore);

        // A cursor that never named a file of this workspace, just after one of its files, works the same way.
        Assert.True(WharfIds.TryFromBase62(expected[20].AsSpan(WharfIds.FilePrefix.Length), out UInt128 value));
        string ghost = WharfIds.File(value + 1);
        var afterGhost = await Catalog.ListAsync(Query(WsA, limit: 5, descending: descending, after: ghost), Ct);
        var expectedAfterGhost = expected
            .Where(id => id != cursor && (descending ? string.CompareOrdinal(id, ghost) < 0 : string.CompareOrdinal(id, ghost) > 0))
            .Take(5);
        Assert.Equal(expectedAfterGhost, afterGhost.Items.Select(f => f.Id));
        Assert.Equal(5, afterGhost.Items.Count);
    }

    [Fact]
    public async Task AnotherWorkspacesCursorLeaksNothing()
    {
        var mine = await Insert57Async();
        var theirs = (await Catalog.ListAsync(Query(WsB), Ct)).Items;
        Assert.Equal(19, theirs.Count);
        Assert.All(theirs, f => Assert.Equal(WsB, f.WorkspaceId));
        var page = await Catalog.ListAsync(Query(WsA, after: theirs[5].Id), Ct);
        Assert.All(page.Items, f => Assert.Equal(WsA, f.WorkspaceId));
        Assert.Equal(Ordered(mine, true).Where(id => string.CompareOrdinal(id, theirs[5].Id) < 0), page.Items.Select(f => f.Id));
    }

    public static TheoryData<string> FilterCases => new()
    {
        "purpose=batch", "purpose=assistants", "purpose=fine-tune",
        "status=processed", "status=error", "status=uploaded",
        "provider=openai", "provider=groq", "provider=azure",
        "collection=five", "collection=one", "collection=none",
        "metadata:team=a", "metadata:env=prod", "metadata:n=13", "metadata:team=c",
        "metadata:team=a&metadata:env=prod", "metadata:env=prod&metadata:team=b", "metadata:team=a&metadata:team=b",
        "purpose=batch&status=error", "provider=openai&metadata:env=prod", "collection=five&metadata:team=a&purpose=user_data",
        "provider=groq&purpose=batch", "provider=groq&metadata:team=a&metadata:env=prod",
    };

    /// <summary>A filter and what it must match; <c>provider=X</c> matches the files with a copy on X.</summary>
    private (FileListQuery Query, Func<FileRecord, bool> Match) ParseFilter(string spec, string ws)
    {
        var query = Query(ws);
        Func<FileRecord, bool> match = f => f.WorkspaceId == ws;
        var metadata = new List<KeyValuePair<string, string>>();
        foreach (string part in spec.Split('&'))
        {
            string[] kv = part.Split('=');
            string name = kv[0], value = kv[1];
            var previous = match;
            switch (name)
            {
                case "purpose": query = query with { Purpose = value }; match = f => previous(f) && f.Purpose == value; break;
                case "status": query = query with { Status = value }; match = f => previous(f) && f.Status == value; break;
                case "provider": query = query with { Provider = value }; match = f => previous(f) && _copied.Contains((f.Id, value)); break;
                case "collection": query = query with { Collection = value }; match = f => previous(f) && f.Collection == value; break;
                default:
                    string key = name["metadata:".Length..];
                    metadata.Add(new(key, value));
                    match = f => previous(f) && f.Metadata.TryGetValue(key, out var v) && v == value;
                    break;
            }
        }
        return (query with { Metadata = metadata }, match);
    }

    [Theory]
    [MemberData(nameof(FilterCases))]
    public async Task FiltersMatchExactlyTheRightFiles(string spec)
    {
        var mine = await Insert57Async();
        var (query, match) = ParseFilter(spec, WsA);

        // One page.
        var expected = Ordered(mine.Where(match), descending: true);
        var page = await Catalog.ListAsync(query, Ct);
        Assert.Equal(expected, page.Items.Select(f => f.Id));
        Assert.False(page.HasMore);

        // Paged in both orders, with the filter applied on every page.
        Assert.Equal(expected, await WalkAfterAsync(query with { Limit = 3 }));
        Assert.Equal(Ordered(mine.Where(match), descending: false), await WalkAfterAsync(query with { Limit = 4, Descending = false }));

        // 'before' with a filter.
        if (expected.Count > 2)
        {
            var before = await Catalog.ListAsync(query with { Limit = 2, Before = expected[^1] }, Ct);
            Assert.Equal(expected[^3..^1], before.Items.Select(f => f.Id));
        }
    }

    [Fact]
    public async Task SomeFiltersReallyFilter()
    {
        // Guards the theory above against a data set where every filter trivially matches all or nothing.
        var mine = await Insert57Async();
        Assert.Equal(19, (await Catalog.ListAsync(Query(WsA, purpose: "batch"), Ct)).Items.Count);
        Assert.Equal(29, (await Catalog.ListAsync(Query(WsA, metadata: [new("team", "a")]), Ct)).Items.Count);
        Assert.Equal(10, (await Catalog.ListAsync(Query(WsA, metadata: [new("team", "a"), new("env", "prod")]), Ct)).Items.Count);
        Assert.Equal(mine[13].Id, Assert.Single((await Catalog.ListAsync(Query(WsA, metadata: [new("n", "13")]), Ct)).Items).Id);
    }

    [Fact]
    public async Task MetadataFiltersNeverMatchAnotherWorkspace()
    {
        await Insert57Async();
        // WsB holds copies of some of WsA's files with the same metadata.
        var b = await Catalog.ListAsync(Query(WsB, metadata: [new("team", "a")]), Ct);
        Assert.NotEmpty(b.Items);
        Assert.All(b.Items, f => Assert.Equal(WsB, f.WorkspaceId));
        var b2 = await Catalog.ListAsync(Query(WsB, metadata: [new("team", "a"), new("env", "prod")]), Ct);
        Assert.NotEmpty(b2.Items);
        Assert.All(b2.Items, f => Assert.Equal(WsB, f.WorkspaceId));

        // A file whose metadata only another workspace has is not matched.
        var only = TestFiles.Make(WsB, NewFileId(), metadata: new Dictionary<string, string> { ["secret"] = "x", ["team"] = "z" });
        await Catalog.InsertAsync(only, Ct);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("secret", "x")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("team", "a"), new("team", "z")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("team", "a"), new("secret", "x")]), Ct)).Items);
        Assert.Single((await Catalog.ListAsync(Query(WsB, metadata: [new("secret", "x")]), Ct)).Items);
    }

    [Fact]
    public async Task MetadataFilterValuesAreExactAndCaseSensitive()
    {
        var file = TestFiles.Make(WsA, NewFileId(), metadata: new Dictionary<string, string> { ["Team"] = "Search \u00e9" });
        await Catalog.InsertAsync(file, Ct);
        Assert.Single((await Catalog.ListAsync(Query(WsA, metadata: [new("Team", "Search \u00e9")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("team", "Search \u00e9")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("Team", "search \u00e9")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("Team", "Search")]), Ct)).Items);
        Assert.Empty((await Catalog.ListAsync(Query(WsA, metadata: [new("Team", "%")]), Ct)).Items);
    }

    [Fact]
    public async Task ExpiredFilesAreNotListed()
    {
        var live = new List<FileRecord>();
        for (int i = 0; i < 12; i++)
        {
            long? expiresAt = (i % 3) switch { 0 => Now - 1, 1 => Now + 60, _ => null };
            var file = TestFiles.Make(WsA, NewFileId(), expiresAt: expiresAt, metadata: new Dictionary<string, string> { ["k"] = "v" });
            await Catalog.InsertAsync(file, Ct);
            if (i % 3 != 0)
            {
                live.Add(file);
            }
        }
        // Expiring exactly now counts as expired.
        var edge = TestFiles.Make(WsA, NewFileId(), expiresAt: Now);
        await Catalog.InsertAsync(edge, Ct);

        var expected = Ordered(live, descending: true);
        Assert.Equal(expected, (await Catalog.ListAsync(Query(WsA), Ct)).Items.Select(f => f.Id));
        Assert.Equal(expected, await WalkAfterAsync(Query(WsA, limit: 3)));
        Assert.Equal(expected, await WalkAfterAsync(Query(WsA, limit: 3, metadata: [new("k", "v")])));

        // has_more does not count expired files: the last live file is followed only by expired ones.
        var page = await Catalog.ListAsync(Query(WsA, limit: expected.Count - 1), Ct);
        Assert.True(page.HasMore);
        var rest = await Catalog.ListAsync(Query(WsA, limit: 5, after: page.Items[^1].Id), Ct);
        Assert.Equal(expected[^1], Assert.Single(rest.Items).Id);
        Assert.False(rest.HasMore);

        // Time passes: the files that expire in a minute disappear from the list.
        Clock.Now = Clock.Now.AddSeconds(61);
        var later = await Catalog.ListAsync(Query(WsA), Ct);
        Assert.Equal(Ordered(live.Where(f => f.ExpiresAt is null), descending: true), later.Items.Select(f => f.Id));
    }

    [Fact]
    public async Task AnotherWorkspacesFilesAreNeverListed()
    {
        var mine = await Insert57Async();
        var page = await Catalog.ListAsync(Query(WsA), Ct);
        Assert.Equal(Ordered(mine, true), page.Items.Select(f => f.Id));
        var theirs = await Catalog.ListAsync(Query(WsB), Ct);
        Assert.Equal(19, theirs.Items.Count);
        Assert.Empty(theirs.Items.Select(f => f.Id).Intersect(page.Items.Select(f => f.Id)));
    }

    // ---------------------------------------------------------------- sweeper queries

    [Fact]
    public async Task ListExpiredReturnsExpiredFilesOldestFirstAcrossWorkspaces()
    {
        var a = TestFiles.Make(WsA, NewFileId(), expiresAt: 1000);
        var b = TestFiles.Make(WsB, NewFileId(), expiresAt: 500);
        var c = TestFiles.Make(WsA, NewFileId(), expiresAt: 2000);
        var d = TestFiles.Make(WsA, NewFileId(), expiresAt: 3000);
        var never = TestFiles.Make(WsA, NewFileId());
        foreach (var f in new[] { a, b, c, d, never })
        {
            await Catalog.InsertAsync(f, Ct);
        }

        Assert.Empty(await Catalog.ListExpiredAsync(499, 10, Ct));
        Assert.Equal(new[] { b.Id, a.Id, c.Id }, (await Catalog.ListExpiredAsync(2000, 10, Ct)).Select(f => f.Id));
        Assert.Equal(new[] { b.Id, a.Id }, (await Catalog.ListExpiredAsync(Max, 2, Ct)).Select(f => f.Id));
        var all = await Catalog.ListExpiredAsync(Max, 100, Ct);
        Assert.Equal(new[] { b.Id, a.Id, c.Id, d.Id }, all.Select(f => f.Id));
        Assert.Equal(WsB, all[0].WorkspaceId);

        Assert.True(await Catalog.DeleteAsync(WsB, b.Id, Ct));
        Assert.Equal(a.Id, (await Catalog.ListExpiredAsync(Max, 1, Ct))[0].Id);
    }

    [Fact]
    public async Task AFileWithoutASha256IsListedUntilItsSha256IsSetOnce()
    {
        var hashed = TestFiles.Make(WsA, NewFileId());
        var first = TestFiles.Make(WsA, NewFileId()) with { Sha256 = null, Segmented = true };
        var second = TestFiles.Make(WsB, NewFileId()) with { Sha256 = null };
        foreach (var f in new[] { hashed, first, second })
        {
            Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(f, Ct));
        }
        Assert.Null((await Catalog.GetAsync(WsA, first.Id, Ct))!.Sha256);
        Assert.Equal(new[] { first.Id, second.Id }, (await Catalog.ListUnhashedAsync(null, 10, NowMs, Ct)).Select(f => f.Id));
        Assert.Equal(new[] { first.Id }, (await Catalog.ListUnhashedAsync(null, 1, NowMs, Ct)).Select(f => f.Id));
        Assert.Equal(new[] { second.Id }, (await Catalog.ListUnhashedAsync(first.Id, 10, NowMs, Ct)).Select(f => f.Id));
        Assert.Empty(await Catalog.ListUnhashedAsync(second.Id, 10, NowMs, Ct));

        string sha = new('a', 64);
        Assert.False(await Catalog.SetSha256Async(WsB, first.Id, sha, Ct)); // another workspace's file
        Assert.True(await Catalog.SetSha256Async(WsA, first.Id, sha, Ct));
        Assert.False(await Catalog.SetSha256Async(WsA, first.Id, new string('b', 64), Ct)); // set once
        Assert.False(await Catalog.SetSha256Async(WsA, hashed.Id, sha, Ct));
        Assert.False(await Catalog.SetSha256Async(WsA, NewFileId(), sha, Ct));
        var read = await Catalog.GetAsync(WsA, first.Id, Ct);
        Assert.Equal(first with { Sha256 = sha }, read! with { Metadata = first.Metadata });
        Assert.Equal(new string('0', 64), (await Catalog.GetAsync(WsA, hashed.Id, Ct))!.Sha256);
        Assert.Equal(new[] { second.Id }, (await Catalog.ListUnhashedAsync(null, 10, NowMs, Ct)).Select(f => f.Id));

        Assert.True(await Catalog.DeleteAsync(WsB, second.Id, Ct));
        Assert.Empty(await Catalog.ListUnhashedAsync(null, 10, NowMs, Ct));
    }

    [Fact]
    public async Task FindExistingReportsRowsInAnyWorkspace()
    {
        var a = TestFiles.Make(WsA, NewFileId());
        var b = TestFiles.Make(WsB, NewFileId());
        await Catalog.InsertAsync(a, Ct);
        await Catalog.InsertAsync(b, Ct);
        string missing = NewFileId();

        var found = await Catalog.FindExistingAsync([a.Id, missing, b.Id, "not-an-id", "x\"]'"], Ct);
        Assert.Equal(new[] { a.Id, b.Id }.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
        Assert.Empty(await Catalog.FindExistingAsync([], Ct));
        Assert.Empty(await Catalog.FindExistingAsync([missing], Ct));

        var many = Enumerable.Range(0, 600).Select(_ => NewFileId()).Append(a.Id).ToList();
        Assert.Equal(a.Id, Assert.Single(await Catalog.FindExistingAsync(many, Ct)));
    }

    [Fact]
    public async Task CheckSucceeds()
    {
        await Catalog.CheckAsync(Ct);
        await Blobs.CheckAsync(Ct);
        Assert.False(await Backend.Keys.AnyKeyAsync(Ct));
    }

    // ---------------------------------------------------------------- blobs

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private async Task<string> CommitAsync(byte[] bytes)
    {
        using var source = new MemoryStream(bytes);
        await using var staged = await Blobs.StageAsync(source, Max, Ct);
        Assert.NotNull(staged);
        string id = NewFileId();
        await staged.CommitAsync(id, Ct);
        return id;
    }

    [Fact]
    public async Task StageEmptyContent()
    {
        using var source = new MemoryStream();
        await using var staged = await Blobs.StageAsync(source, 10, Ct);
        Assert.NotNull(staged);
        Assert.Equal(0, staged.Length);
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", staged.Sha256);

        string id = NewFileId();
        await staged.CommitAsync(id, Ct);
        await using var read = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(read);
        Assert.Empty(await ReadAllAsync(read));
    }

    [Fact]
    public async Task StageAFewBytes()
    {
        byte[] bytes = "hello, wharf\n"u8.ToArray();
        using var source = new MemoryStream(bytes);
        await using var staged = await Blobs.StageAsync(source, bytes.Length, Ct);
        Assert.NotNull(staged);
        Assert.Equal(bytes.Length, staged.Length);
        Assert.Equal(Sha(bytes), staged.Sha256);
    }

    [Fact]
    public async Task StageFiveMegabytesFromANonSeekableTrickle()
    {
        byte[] bytes = RandomBytes(5 * 1024 * 1024 + 17, seed: 5);
        await using var source = new TrickleStream(bytes, seed: 9);
        await using var staged = await Blobs.StageAsync(source, 512L * 1024 * 1024, Ct);
        Assert.NotNull(staged);
        Assert.Equal(bytes.Length, staged.Length);
        Assert.Equal(Sha(bytes), staged.Sha256);

        string id = NewFileId();
        await staged.CommitAsync(id, Ct);
        await using var read = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(read);
        Assert.Equal(bytes, await ReadAllAsync(read));
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(101, 100)]
    [InlineData(3 * 1024 * 1024, 1024 * 1024)]
    [InlineData(3 * 1024 * 1024, 3 * 1024 * 1024 - 1)]
    public async Task ContentOverTheMaximumIsRefusedAndNothingIsKept(int length, long maxBytes)
    {
        await using var source = new TrickleStream(RandomBytes(length, seed: length), seed: 3);
        var staged = await Blobs.StageAsync(source, maxBytes, Ct);
        Assert.Null(staged);
        Assert.Equal(0, await Blobs.SweepStagingAsync(DateTimeOffset.MaxValue, Ct));
        await foreach (var blob in Blobs.ListAsync(Ct))
        {
            Assert.Fail("unexpected blob " + blob.BlobId);
        }
    }

    [Fact]
    public async Task ContentOfExactlyTheMaximumIsAccepted()
    {
        byte[] bytes = RandomBytes(300_000, seed: 1);
        await using var source = new TrickleStream(bytes, seed: 2);
        await using var staged = await Blobs.StageAsync(source, bytes.Length, Ct);
        Assert.NotNull(staged);
        Assert.Equal(bytes.Length, staged.Length);
        Assert.Equal(Sha(bytes), staged.Sha256);
    }

    [Fact]
    public async Task DisposingWithoutCommitKeepsNothing()
    {
        using (var source = new MemoryStream(RandomBytes(1000, seed: 4)))
        {
            var staged = await Blobs.StageAsync(source, Max, Ct);
            Assert.NotNull(staged);
            await staged.DisposeAsync();
        }
        Assert.Equal(0, await Blobs.SweepStagingAsync(DateTimeOffset.MaxValue, Ct));
        var listed = new List<BlobEntry>();
        await foreach (var blob in Blobs.ListAsync(Ct))
        {
            listed.Add(blob);
        }
        Assert.Empty(listed);
    }

    [Fact]
    public async Task CommittedBlobReadsBackIdenticallyAndIsSeekable()
    {
        byte[] bytes = RandomBytes(700_001, seed: 7);
        string id = await CommitAsync(bytes);

        await using var read = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(read);
        Assert.True(read.CanSeek);
        Assert.Equal(bytes.Length, read.Length);
        Assert.Equal(bytes, await ReadAllAsync(read));

        read.Seek(500_000, SeekOrigin.Begin);
        var middle = new byte[10];
        await read.ReadExactlyAsync(middle, Ct);
        Assert.Equal(bytes.AsSpan(500_000, 10).ToArray(), middle);

        // Disposing the committed staged blob (done by CommitAsync's using) did not remove it.
        await using var again = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(again);
        Assert.Equal(Sha(bytes), Sha(await ReadAllAsync(again)));
    }

    [Fact]
    public async Task TwoReadersAtOnce()
    {
        byte[] bytes = RandomBytes(10_000, seed: 8);
        string id = await CommitAsync(bytes);
        await using var a = await Blobs.OpenReadAsync(id, Ct);
        await using var b = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(a);
        Assert.NotNull(b);
        Assert.Equal(bytes, await ReadAllAsync(a));
        Assert.Equal(bytes, await ReadAllAsync(b));
    }

    [Fact]
    public async Task OpenOfAnUnknownBlobIsNull()
    {
        Assert.Null(await Blobs.OpenReadAsync(NewFileId(), Ct));
        await CommitAsync([1, 2, 3]);
        Assert.Null(await Blobs.OpenReadAsync(NewFileId(), Ct));
    }

    [Fact]
    public async Task DeleteThenOpenIsNull()
    {
        string id = await CommitAsync([1, 2, 3]);
        string other = await CommitAsync([4, 5, 6]);
        await Blobs.DeleteAsync(id, Ct);
        Assert.Null(await Blobs.OpenReadAsync(id, Ct));
        await using var kept = await Blobs.OpenReadAsync(other, Ct);
        Assert.NotNull(kept);
        Assert.Equal(new byte[] { 4, 5, 6 }, await ReadAllAsync(kept));
    }

    [Fact]
    public async Task DeleteOfAMissingBlobDoesNotThrow()
    {
        string id = NewFileId();
        await Blobs.DeleteAsync(id, Ct);
        string committed = await CommitAsync([1]);
        await Blobs.DeleteAsync(committed, Ct);
        await Blobs.DeleteAsync(committed, Ct);
        Assert.Null(await Blobs.OpenReadAsync(committed, Ct));
    }

    [Fact]
    public async Task ListListsCommittedBlobsOnly()
    {
        var ids = new List<string>();
        for (int i = 0; i < 12; i++)
        {
            ids.Add(await CommitAsync(RandomBytes(i * 10, seed: i)));
        }
        using var source = new MemoryStream([9, 9, 9]);
        await using var pending = await Blobs.StageAsync(source, Max, Ct);
        Assert.NotNull(pending);
        await Blobs.DeleteAsync(ids[3], Ct);

        var listed = new List<BlobEntry>();
        await foreach (var blob in Blobs.ListAsync(Ct))
        {
            listed.Add(blob);
        }
        Assert.Equal(ids.Where((_, i) => i != 3).Order(StringComparer.Ordinal), listed.Select(b => b.BlobId).Order(StringComparer.Ordinal));
        Assert.All(listed, b => Assert.True(b.LastWrite > DateTimeOffset.UtcNow.AddHours(-1) && b.LastWrite < DateTimeOffset.UtcNow.AddHours(1)));
    }

    [Fact]
    public async Task SweepStagingNeverRemovesWhatARequestHolds()
    {
        byte[] committedBytes = RandomBytes(100, seed: 11);
        string committed = await CommitAsync(committedBytes);
        byte[] pendingBytes = RandomBytes(100, seed: 12);
        using var source = new MemoryStream(pendingBytes);
        var pending = await Blobs.StageAsync(source, Max, Ct);
        Assert.NotNull(pending);

        // However old the sweep thinks it is, a staged blob its request still holds stays, and so does a committed one.
        Assert.Equal(0, await Blobs.SweepStagingAsync(DateTimeOffset.UtcNow.AddHours(-1), Ct));
        Assert.Equal(0, await Blobs.SweepStagingAsync(DateTimeOffset.MaxValue, Ct));

        await using var read = await Blobs.OpenReadAsync(committed, Ct);
        Assert.NotNull(read);
        Assert.Equal(committedBytes, await ReadAllAsync(read));

        // The held blob can still be committed after the sweeps; until its request lets go, the listing skips it
        // (its catalog row may not be written yet), then lists it.
        string id = NewFileId();
        await pending.CommitAsync(id, Ct);
        Assert.DoesNotContain(id, await ListIdsAsync());
        await pending.DisposeAsync();
        Assert.Contains(id, await ListIdsAsync());
        await using var kept = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(kept);
        Assert.Equal(pendingBytes, await ReadAllAsync(kept));
    }

    private async Task<List<string>> ListIdsAsync()
    {
        var ids = new List<string>();
        await foreach (var blob in Blobs.ListAsync(Ct))
        {
            ids.Add(blob.BlobId);
        }
        return ids;
    }

    [Fact]
    public async Task CommitAfterAFreshSweepStillWorks()
    {
        byte[] bytes = RandomBytes(1000, seed: 13);
        using var source = new MemoryStream(bytes);
        await using var staged = await Blobs.StageAsync(source, Max, Ct);
        Assert.NotNull(staged);
        Assert.Equal(0, await Blobs.SweepStagingAsync(DateTimeOffset.UtcNow.AddMinutes(-5), Ct));
        string id = NewFileId();
        await staged.CommitAsync(id, Ct);
        await using var read = await Blobs.OpenReadAsync(id, Ct);
        Assert.NotNull(read);
        Assert.Equal(bytes, await ReadAllAsync(read));
    }
}
