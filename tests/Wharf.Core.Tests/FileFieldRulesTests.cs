using Wharf.Core.Files;

namespace Wharf.Core.Tests;

public sealed class FileFieldRulesTests
{
    [Theory]
    [InlineData("assistants")]
    [InlineData("fine-tune")]
    [InlineData("user_data")]
    public void NoExpiryByDefault(string purpose)
    {
        var result = FileFieldRules.ExpirySeconds(null, null, purpose);
        Assert.True(result.IsOk);
        Assert.Null(result.Value);
    }

    [Fact]
    public void BatchDefaultsToThirtyDays()
    {
        var result = FileFieldRules.ExpirySeconds(null, null, "batch");
        Assert.True(result.IsOk);
        Assert.Equal(2_592_000L, result.Value);
    }

    [Fact]
    public void ExplicitExpiryOverridesTheBatchDefault()
    {
        Assert.Equal(7200L, FileFieldRules.ExpirySeconds("created_at", "7200", "batch").Value);
    }

    [Theory]
    [InlineData("3600", 3600L)]
    [InlineData("86400", 86400L)]
    [InlineData("2592000", 2_592_000L)]
    public void SecondsInRangeAccepted(string seconds, long expected)
    {
        var result = FileFieldRules.ExpirySeconds("created_at", seconds, "assistants");
        Assert.True(result.IsOk);
        Assert.Equal(expected, result.Value);
    }

    [Theory]
    [InlineData("3599")]
    [InlineData("2592001")]
    [InlineData("0")]
    [InlineData("-3600")]
    [InlineData("abc")]
    [InlineData("3600.5")]
    [InlineData("")]
    [InlineData("99999999999999999999999")]
    public void SecondsOutOfRangeRejected(string seconds)
    {
        var result = FileFieldRules.ExpirySeconds("created_at", seconds, "assistants");
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("expires_after[seconds]", result.Error.Param);
    }

    [Theory]
    [InlineData("last_active_at")]
    [InlineData("Created_at")]
    [InlineData("")]
    public void OnlyCreatedAtAnchor(string anchor)
    {
        var result = FileFieldRules.ExpirySeconds(anchor, "3600", "assistants");
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("expires_after[anchor]", result.Error.Param);
    }

    [Fact]
    public void SecondsWithoutAnchorRejected()
    {
        var result = FileFieldRules.ExpirySeconds(null, "3600", "assistants");
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.StartsWith("expires_after", result.Error.Param, StringComparison.Ordinal);
    }

    [Fact]
    public void AnchorWithoutSecondsRejected()
    {
        var result = FileFieldRules.ExpirySeconds("created_at", null, "batch");
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("expires_after[seconds]", result.Error.Param);
    }

    [Theory]
    [InlineData("a\r\nb.txt", "ab.txt")]
    [InlineData("a\0b.txt", "ab.txt")]
    [InlineData("\ttab.txt", "tab.txt")]
    [InlineData("bell\u0007.txt", "bell.txt")]
    [InlineData("del\u007f.txt", "del.txt")]
    [InlineData("nel\u0085.txt", "nel.txt")]
    [InlineData("  padded.txt  ", "padded.txt")]
    public void ControlCharactersRemoved(string raw, string expected)
    {
        var result = FileFieldRules.Filename(raw);
        Assert.True(result.IsOk);
        Assert.Equal(expected, result.Value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\r\n")]
    [InlineData("\0\0")]
    [InlineData(" \u0001 ")]
    public void EmptyOrWhitespaceOnlyRejected(string? raw)
    {
        var result = FileFieldRules.Filename(raw);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("file", result.Error.Param);
    }

    [Theory]
    [InlineData("r\u00e9sum\u00e9.pdf")]
    [InlineData("\u65e5\u672c\u8a9e.txt")]
    [InlineData("emoji-\U0001F600.jsonl")]
    [InlineData("../../etc/passwd")]
    [InlineData("C:\\Windows\\system.ini")]
    [InlineData("a/b/c.txt")]
    [InlineData("\"quoted\"; name=x.txt")]
    public void NameIsKeptAsData(string raw)
    {
        var result = FileFieldRules.Filename(raw);
        Assert.True(result.IsOk);
        Assert.Equal(raw, result.Value);
    }

    [Fact]
    public void FilenameLengthLimit()
    {
        Assert.Equal(1024, FileFieldRules.Filename(new string('a', 1024)).Value.Length);
        var result = FileFieldRules.Filename(new string('a', 1025));
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("file", result.Error.Param);
    }

    [Fact]
    public void FilenameLengthIsCountedAfterCleaning()
    {
        var result = FileFieldRules.Filename(new string('a', 1024) + "\r\n");
        Assert.True(result.IsOk);
        Assert.Equal(1024, result.Value.Length);
    }

    [Fact]
    public void Collection()
    {
        Assert.True(FileFieldRules.Collection(null).IsOk);
        Assert.Null(FileFieldRules.Collection(null).Value);
        Assert.Equal("docs", FileFieldRules.Collection("docs").Value);
        Assert.Equal("r\u00e9sum\u00e9s 2025", FileFieldRules.Collection("r\u00e9sum\u00e9s 2025").Value);
        Assert.Equal(256, FileFieldRules.Collection(new string('c', 256)).Value!.Length);

        foreach (string bad in new[] { "", new string('c', 257), "a\nb", "tab\there", "nul\0" })
        {
            var result = FileFieldRules.Collection(bad);
            Assert.False(result.IsOk);
            Assert.Equal(400, result.Error.Status);
            Assert.Equal("collection", result.Error.Param);
        }
    }
}

public sealed class FilePurposesTests
{
    private static FilePurposes With(params string[] extra) =>
        new(Microsoft.Extensions.Options.Options.Create(new FilesOptions { ExtraPurposes = [.. extra] }));

    [Fact]
    public void OpenAIPurposesByDefault()
    {
        var purposes = With();
        Assert.Equal(new[] { "assistants", "batch", "fine-tune", "vision", "user_data", "evals" }, purposes.Uploadable);
        foreach (string purpose in purposes.Uploadable)
        {
            Assert.True(purposes.CanUpload(purpose));
            Assert.True(purposes.CanList(purpose));
        }
        Assert.False(purposes.CanUpload("document"));
        Assert.False(purposes.CanList("document"));
        Assert.False(purposes.CanUpload("Assistants"));
        Assert.False(purposes.CanUpload(""));
    }

    [Fact]
    public void BatchOutputIsListableButNeverUploadable()
    {
        var purposes = With();
        Assert.True(purposes.CanList("batch_output"));
        Assert.False(purposes.CanUpload("batch_output"));
        Assert.DoesNotContain("batch_output", purposes.Uploadable);
    }

    [Fact]
    public void ExtraPurposeCannotMakeBatchOutputUploadable()
    {
        var purposes = With("batch_output", "document");
        Assert.False(purposes.CanUpload("batch_output"));
        Assert.DoesNotContain("batch_output", purposes.Uploadable);
        Assert.True(purposes.CanList("batch_output"));
    }

    [Fact]
    public void ExtraPurposesAreUploadableAndListable()
    {
        var purposes = With("document");
        Assert.True(purposes.CanUpload("document"));
        Assert.True(purposes.CanList("document"));
        Assert.Equal("document", purposes.Uploadable[^1]);
        Assert.Equal(7, purposes.Uploadable.Count);
    }

    [Fact]
    public void ExtraPurposeRepeatingAnOpenAIPurposeIsNotListedTwice()
    {
        var purposes = With("batch", "vision");
        Assert.Equal(6, purposes.Uploadable.Count);
        Assert.Equal(purposes.Uploadable.Count, purposes.Uploadable.Distinct().Count());
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/jsonl; charset=utf-8")]
    [InlineData("multipart/x; boundary=\"a b\"")]
    [InlineData("t")]
    public void SendableContentTypesAreKept(string value)
    {
        Assert.True(FileFieldRules.IsSendableContentType(value));
        Assert.Equal(value, FileFieldRules.ContentType(value, "file").Value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void NoContentTypeIsNone(string? value)
    {
        Assert.False(FileFieldRules.IsSendableContentType(value));
        var result = FileFieldRules.ContentType(value, "file");
        Assert.True(result.IsOk);
        Assert.Null(result.Value);
    }

    [Theory]
    [InlineData("text/plain; charset=\u00e9")]
    [InlineData("text/\u65e5")]
    [InlineData("text/plain\r\nX-Evil: 1")]
    [InlineData("text/plain\u0000")]
    [InlineData("text/plain\t")]
    [InlineData("text/plain\u007f")]
    public void ContentTypesThatCannotBeSentAreRefused(string value)
    {
        Assert.False(FileFieldRules.IsSendableContentType(value));
        var result = FileFieldRules.ContentType(value, "file");
        Assert.False(result.IsOk);
        Assert.Equal(("file", "invalid_content_type"), (result.Error.Param, result.Error.Code));
    }

    [Fact]
    public void ContentTypesAreLimitedTo255Characters()
    {
        string longest = "text/" + new string('x', 250);
        Assert.True(FileFieldRules.IsSendableContentType(longest));
        Assert.False(FileFieldRules.IsSendableContentType(longest + "x"));
    }
}
