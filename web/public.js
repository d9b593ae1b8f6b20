// The public stats page, /{key}+: the key is the path without its "/" and "+"; no API key.
'use strict';
document.addEventListener('DOMContentLoaded', function () {
  var path = location.pathname;
  var key = decodeURIComponent(path.slice(1, path.length - 1));
  document.title = 'Stats of ' + key + ' · shortener';
  Stats.show(document.getElementById('stats'), key, { headers: {}, publicPage: true });
});
