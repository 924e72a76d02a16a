using Wharf.Server.Hosting;

// The content root (appsettings.json) is where the server was built to, whatever the working directory;
// a relative Wharf:DataDir is resolved against the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddWharf();

var app = builder.Build();
app.UseWharf();
app.MapWharf();
app.Run();
