console.log('tilefarm viewer');
