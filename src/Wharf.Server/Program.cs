using Wharf.Server.Hosting;

// `move-up` copies an embedded store into PostgreSQL + S3 and exits (docs/moving-up.md); anything else starts the server.
if (MoveUpCommand.IsRequested(args))
{
    return await MoveUpCommand.RunAsync(args);
}

// The content root (appsettings.json) is where the server was built to, whatever the working directory;
// a relative Wharf:DataDir is resolved against the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddWharf();

var app = builder.Build();
app.UseWharf();
app.MapWharf();
app.Run();
return 0;
